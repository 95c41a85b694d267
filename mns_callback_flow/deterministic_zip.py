"""A zip whose bytes depend on its files alone: deflated by the pinned libdeflate, not the system zlib.

Deflate output is not a function of the input: each compressor, and each build
of one (zlib, zlib-ng, Apple's zlib), may choose other matches for the same
bytes. Python's ``zipfile`` deflates with the interpreter's zlib, so its
archives differ between machines. Here every entry is deflated by libdeflate,
which the pinned ``deflate`` wheel bundles and links statically (requirements.txt),
at one fixed level. In libdeflate's compressor no code is chosen at run time
by CPU features and no floating point is used; its one piece of per-CPU code
fills and slides the match finder's tables with the values of the portable
loops (docs/platform-facts.md "Archive compression and the fast verify path").
libdeflate promises the same output only for the same version and level
(``libdeflate.h``): a test pins the bytes, so an upgrade that changes them fails.

``zipfile`` writes an entry's data only through its own compressor, so the zip
structure is written here, after PKWARE's APPNOTE.TXT 6.3.10:

* 4.3.7 local file header, then the entry's data (4.3.8);
* 4.3.12 central directory file header, one per entry;
* 4.3.16 end of central directory record;
* 4.4.2 "version made by" (upper byte 3, UNIX, so 4.4.15 external attributes
  carry the mode bits), 4.4.3 version needed (2.0 for deflate), 4.4.4 bit 11
  for UTF-8 names, 4.4.5 methods 0 (stored) and 8 (deflated), 4.4.6 MS-DOS time.

No ZIP64 (4.3.14): an archive past its limits is refused.

Entries are deflated on a few threads at once (libdeflate runs without the GIL):
each entry is compressed on its own, so the bytes do not depend on how many
threads there are or which finishes first.
"""

import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

try:
    import deflate
except ImportError as exc:
    raise ImportError("the code archive is deflated by the 'deflate' package, pinned in requirements.txt: "
                      "run pip install -r requirements.txt", name="deflate") from exc

# libdeflate's levels run 1-12; 9 is the strongest of its fast (lazy) parsers:
# within 2% of level 12 on the code archive, in an eighth of the time.
DEFLATE_LEVEL = 9
STORED, DEFLATED = 0, 8
MADE_BY_UNIX = 3 << 8
VERSION_NEEDED = 20  # 2.0: deflate (APPNOTE 4.4.3.2)
UTF8_NAME_FLAG = 1 << 11
MAX_U16, MAX_U32 = 0xFFFF, 0xFFFFFFFF

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 4.3.7, 30 bytes before the name
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 4.3.12, 46 bytes before the name
_END = struct.Struct("<IHHHHIIH")  # 4.3.16, 22 bytes
_LOCAL_SIGNATURE, _CENTRAL_SIGNATURE, _END_SIGNATURE = 0x04034B50, 0x02014B50, 0x06054B50


class ZipLimitError(ValueError):
    """The archive would need ZIP64, which this writer does not produce."""


def dos_time_and_date(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    """APPNOTE 4.4.6: MS-DOS time (2-second steps) and date (years from 1980)."""
    year, month, day, hour, minute, second = date_time
    if not 1980 <= year <= 2107:
        raise ValueError(f"zip times run from 1980 to 2107, got {year}")
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


def compress(data: bytes, level: int = DEFLATE_LEVEL) -> tuple[int, bytes]:
    """(method, bytes) of one entry: deflated by libdeflate, or stored when that is not smaller."""
    packed = bytes(deflate.deflate_compress(data, level))
    return (DEFLATED, packed) if len(packed) < len(data) else (STORED, data)


# Threads that deflate one archive's entries; below the smallest size a thread is not worth starting.
MAX_THREADS = 4
THREADED_BYTES = 256 * 1024


def compress_all(contents: Sequence[bytes], threads: int | None = None) -> list[tuple[int, bytes]]:
    """``compress`` of each of ``contents``, in order: on up to ``threads`` threads (default:
    the CPUs, at most ``MAX_THREADS``) when there is enough to deflate, else on this one."""
    if threads is None:
        threads = min(MAX_THREADS, os.cpu_count() or 1) if sum(map(len, contents)) >= THREADED_BYTES else 1
    threads = min(threads, len(contents))
    if threads < 2:
        return [compress(data) for data in contents]
    largest_first = sorted(range(len(contents)), key=lambda index: -len(contents[index]))  # the last to start is small
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="deflate") as pool:
        done = dict(zip(largest_first, pool.map(compress, [contents[index] for index in largest_first]), strict=True))
    return [done[index] for index in range(len(contents))]


def zip_archive(entries: Iterable[tuple[str, bytes]], *,
                date_time: tuple[int, int, int, int, int, int], mode: int) -> bytes:
    """The zip of ``entries`` in the order given, every one with ``date_time`` and Unix ``mode``."""
    time, date = dos_time_and_date(date_time)
    listed = list(entries)
    compressed = compress_all([data for _, data in listed])
    body: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for (name, data), (method, packed) in zip(listed, compressed, strict=True):
        encoded = name.encode("utf-8")
        flags = 0 if name.isascii() else UTF8_NAME_FLAG
        crc = zlib.crc32(data)  # CRC-32 is a fixed function: any zlib gives the same value
        if max(len(data), len(packed), offset) > MAX_U32 or len(encoded) > MAX_U16:
            raise ZipLimitError(f"{name}: entry or archive past 4 GiB, or name past 64 KiB, needs ZIP64")
        header = _LOCAL.pack(_LOCAL_SIGNATURE, VERSION_NEEDED, flags, method, time, date, crc,
                             len(packed), len(data), len(encoded), 0)
        central.append(_CENTRAL.pack(_CENTRAL_SIGNATURE, MADE_BY_UNIX | VERSION_NEEDED, VERSION_NEEDED, flags,
                                     method, time, date, crc, len(packed), len(data), len(encoded), 0, 0, 0, 0,
                                     mode << 16, offset) + encoded)
        body += (header, encoded, packed)
        offset += len(header) + len(encoded) + len(packed)
    directory = b"".join(central)
    if len(central) > MAX_U16 or offset + len(directory) > MAX_U32:
        raise ZipLimitError(f"{len(central)} entries or {offset + len(directory)} bytes need ZIP64")
    end = _END.pack(_END_SIGNATURE, 0, 0, len(central), len(central), len(directory), offset, 0)
    return b"".join(body) + directory + end
