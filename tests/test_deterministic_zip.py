"""The code archive's zip writer: deflated by the pinned libdeflate, byte for byte the same
on every machine, and readable by Python's zipfile and by Info-ZIP's ``unzip``."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mns_callback_flow import deterministic_zip, packaging

FIXED_FILES = {
    "index.py": b"def handler(event, context):\n    return {'statusCode': 200}\n" * 20,
    "callback/__init__.py": b"",
    "callback/core.py": b"NAME = 'core'\n",
    "data/caf\u00e9.txt": "\u00e9t\u00e9 ".encode() * 50,
}
# The zip of FIXED_FILES as deflate 0.9.0 (libdeflate 1.25) at level 9 writes it. A compressor
# upgrade that changes this changes every archive's checksum, and every deployed stack's
# preview shows a code change: pin the new bytes here only on purpose.
FIXED_SHA256 = "bedb0ec1af605e322fac8250b0793414dbd5c3323ec70ad80b73db3eb816fc28"


def test_the_archive_bytes_of_a_fixed_input_are_pinned() -> None:
    assert hashlib.sha256(packaging.zip_bytes(FIXED_FILES)).hexdigest() == FIXED_SHA256


def test_the_same_files_in_any_order_give_the_same_bytes() -> None:
    reordered = dict(reversed(list(FIXED_FILES.items())))
    assert packaging.zip_bytes(reordered) == packaging.zip_bytes(FIXED_FILES)


def test_zipfile_reads_every_entry_back_with_its_name_time_and_mode() -> None:
    with zipfile.ZipFile(io.BytesIO(packaging.zip_bytes(FIXED_FILES))) as opened:
        assert opened.testzip() is None
        infos = opened.infolist()
        assert [i.filename for i in infos] == sorted(FIXED_FILES)
        for info in infos:
            assert opened.read(info) == FIXED_FILES[info.filename]
            assert info.date_time == packaging.ZIP_EPOCH
            assert info.external_attr >> 16 == packaging.FILE_MODE
            assert info.create_system == 3
            assert info.CRC == zlib.crc32(FIXED_FILES[info.filename])
        methods = {i.filename: i.compress_type for i in infos}
    assert methods["index.py"] == methods["data/caf\u00e9.txt"] == zipfile.ZIP_DEFLATED
    assert methods["callback/core.py"] == methods["callback/__init__.py"] == zipfile.ZIP_STORED


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP unzip is not installed")
def test_unzip_tests_and_extracts_the_archive(tmp_path: Path) -> None:
    archive = tmp_path / "code.zip"
    archive.write_bytes(packaging.zip_bytes(FIXED_FILES))
    tested = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True, check=False)
    assert tested.returncode == 0 and "No errors detected" in tested.stdout, tested.stdout + tested.stderr
    out = tmp_path / "out"
    subprocess.run(["unzip", "-q", str(archive), "-d", str(out)], check=True)
    for name, data in FIXED_FILES.items():
        assert (out / name).read_bytes() == data
        assert (out / name).stat().st_mode & 0o777 == 0o644


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}(/[a-z0-9_.]{1,8}){0,2}", fullmatch=True),
                       st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(str.encode)), max_size=6))
def test_any_files_round_trip_through_zipfile(files: dict[str, bytes]) -> None:
    data = packaging.zip_bytes(files)
    with zipfile.ZipFile(io.BytesIO(data)) as opened:
        assert opened.testzip() is None
        assert {name: opened.read(name) for name in opened.namelist()} == files
    assert packaging.zip_bytes(files) == data


def test_an_entry_is_stored_when_deflating_does_not_make_it_smaller() -> None:
    noise = hashlib.sha256(b"seed").digest() * 1  # 32 incompressible bytes
    assert deterministic_zip.compress(noise) == (deterministic_zip.STORED, noise)
    method, packed = deterministic_zip.compress(b"a" * 1000)
    assert method == deterministic_zip.DEFLATED and zlib.decompress(packed, -15) == b"a" * 1000


def test_times_outside_the_zip_range_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="zip times run from 1980 to 2107, got 1979"):
        deterministic_zip.zip_archive([("a", b"")], date_time=(1979, 12, 31, 0, 0, 0), mode=0o100644)


def test_an_archive_that_would_need_zip64_is_refused() -> None:
    with pytest.raises(deterministic_zip.ZipLimitError, match="needs ZIP64"):
        deterministic_zip.zip_archive([("x" * 70000, b"")], date_time=packaging.ZIP_EPOCH, mode=0o100644)


def test_without_the_pinned_compressor_the_error_says_what_to_install() -> None:
    script = "import sys; sys.modules['deflate'] = None\nimport mns_callback_flow.deterministic_zip\n"
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False,
                         cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert ran.returncode != 0
    assert "the code archive is deflated by the 'deflate' package, pinned in requirements.txt" in ran.stderr


def test_deflating_on_threads_gives_each_entry_what_one_thread_gives() -> None:
    contents = [bytes([n % 7]) * (n * 997) + FIXED_FILES["index.py"] for n in range(40)]
    one = deterministic_zip.compress_all(contents, threads=1)
    assert one == [deterministic_zip.compress(data) for data in contents]
    for threads in (2, 3, 8):
        assert deterministic_zip.compress_all(contents, threads=threads) == one


def test_an_archive_big_enough_for_threads_has_the_bytes_of_one_deflated_on_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"pkg/m{n}.py": (f"VALUE_{n} = {n!r}\n" * (400 + n)).encode() for n in range(60)}
    assert sum(map(len, files.values())) >= deterministic_zip.THREADED_BYTES
    threaded = packaging.zip_bytes(files)
    monkeypatch.setattr(deterministic_zip, "MAX_THREADS", 1)
    assert packaging.zip_bytes(files) == threaded
