"""The callback function's code archive: a deterministic zip of ``function/``.

Function Compute takes the code as a zip (FC 3.0: base64 in ``code.zip_file``
with a CRC-64/XZ ``checksum``; FC 2.0: a file path plus ``code_checksum``).
The same source and the same installed dependencies always give the same
bytes, so ``pulumi preview`` shows no code change when nothing changed:
entries are sorted, every timestamp is 1980-01-01 and every file is 0644.

Run-time dependencies listed in ``function/requirements.txt``, and everything
they require in turn (their ``Requires-Dist``), are vendored from the
distributions installed in this environment (their RECORD file lists), so
building needs no network. Every pure-Python one travels in the archive on
every runtime, whether or not the runtime preinstalls some version of it: no
runtime names its aliyun-python-sdk-core or jmespath version (python3.12 has
neither). Compiled distributions cannot
travel (the archive must run on Function Compute's Linux whatever machine built
it); one the chosen runtime provides is left out and listed in
``CodeArchive.provided``, any other is refused by name.

Everything here is pure apart from reading files (and ``write_archive``).
"""

from __future__ import annotations

import ast
import base64
import contextlib
import functools
import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import fastcrc

if TYPE_CHECKING:
    import crc
    from packaging.markers import Marker
    from packaging.requirements import Requirement


def _handler_source_dir() -> Path:
    """The handler's code: ``function/`` inside the installed package, or the checkout's
    top-level ``function/`` (the Pulumi project's layout) when run from source."""
    here = Path(__file__).resolve().parent
    installed = here / "function"
    return installed if (installed / ENTRY_MODULE).is_file() else here.parent / "function"


ENTRY_MODULE = "index.py"
FUNCTION_DIR = _handler_source_dir()
# FC 2.0 takes the archive as a file: written under the consuming program's working
# directory (Pulumi runs a program in its project directory), never inside the package.
DEFAULT_BUILD_DIR = Path("build")

# The zip format cannot store times before 1980; a fixed one keeps bytes stable.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--

# CRC-64/XZ (a.k.a. CRC-64/GO-ECMA): the ECMA-182 polynomial, reflected, with
# all-ones init and final xor. FC's ``checksum`` / ``code_checksum`` is this CRC
# of the zip as an unsigned decimal (docs/platform-facts.md; the OSS/FC "x-oss-hash-crc64ecma").
# ``CRC64_XZ`` is that definition as the ``crc`` library's configuration, the tests'
# oracle: built on first use (module ``__getattr__``), as a render never needs it.


def _crc64_xz_configuration() -> crc.Configuration:
    import crc

    return crc.Configuration(
        width=64,
        polynomial=0x42F0E1EBA9EA3693,
        init_value=0xFFFFFFFFFFFFFFFF,
        final_xor_value=0xFFFFFFFFFFFFFFFF,
        reverse_input=True,
        reverse_output=True,
    )


def __getattr__(name: str) -> crc.Configuration:
    if name == "CRC64_XZ":
        configuration = globals()["CRC64_XZ"] = _crc64_xz_configuration()
        return configuration
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_NORMALIZE = re.compile(r"[-_.]+")


def normalize_name(name: str) -> str:
    """PEP 503 name, so ``aliyun_python_sdk_core`` and ``aliyun-python-sdk-core`` match."""
    return _NORMALIZE.sub("-", name).lower()


# Compiled distributions each FC Python runtime provides, so the archive may
# leave them out (docs/platform-facts.md "What each FC Python runtime provides"):
# python3.10 and python3.12 list pyOpenSSL among their built-in modules, which
# requires cryptography, which requires cffi; python3.9 is inferred to have them
# (unverified). No runtime states the version of cryptography; the handler is
# proven against the oldest aliyun-python-sdk-core accepts (``make old-crypto``).
_PYOPENSSL_STACK = frozenset({"cryptography", "cffi"})
RUNTIME_PROVIDES: Mapping[str, frozenset[str]] = {
    "python3.9": _PYOPENSSL_STACK,
    "python3.10": _PYOPENSSL_STACK,
    "python3.12": _PYOPENSSL_STACK,
}

# Entries never shipped: caches, tests, build inputs, editor and VCS junk.
_SKIP_DIRS = {"__pycache__", "tests", "test", "build", "dist"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")
_SKIP_TOP_FILES = {"requirements.txt", "conftest.py"}
# Per-install files of a dist-info folder: they differ between installers and
# machines (and RECORD would be stale without the .pyc files we drop).
_SKIP_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
_COMPILED_SUFFIXES = (".so", ".pyd", ".dll", ".dylib")


class PackagingError(ValueError):
    """The archive cannot be built as asked; the message names what and why."""


@dataclass(frozen=True)
class CodeArchive:
    """A built archive and what Function Compute needs to know about it."""

    data: bytes
    base64: str  # FC 3.0 ``code.zip_file``
    crc64: str  # CRC-64/XZ, unsigned decimal: FC ``checksum`` / ``code_checksum``
    sha256: str  # hex, for people and file names
    entries: tuple[str, ...]  # sorted archive paths
    vendored: tuple[str, ...]  # "name==version" of each vendored distribution
    # "requirement (required by name version)" of each compiled dependency the runtime provides
    provided: tuple[str, ...] = ()


def crc64_xz(data: bytes) -> int:
    """CRC-64/XZ of ``data``.

    ``fastcrc`` (compiled) computes it in microseconds for the whole archive;
    the ``crc`` library defines the algorithm (``CRC64_XZ``) and is the test
    oracle, but its byte loop costs seconds per MiB, and the render checksums
    every archive.
    """
    return fastcrc.crc64.xz(data)


def read_requirements(path: Path) -> list[Requirement]:
    """The requirements in ``path``: one PEP 508 requirement a line, ``#`` comments."""
    # The PyPA `packaging` library is imported where requirements are read: an archive
    # found in the archive store (below) is reused without reading any.
    from packaging.requirements import InvalidRequirement, Requirement

    requirements = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise PackagingError(
                f"{path.name}:{number}: option {line.split()[0]!r} is not supported; "
                "list plain requirements like 'name==1.2.3'"
            )
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise PackagingError(f"{path.name}:{number}: invalid requirement {line!r}: {error}") from None
        if requirement.url:
            raise PackagingError(f"{path.name}:{number}: URL requirement {line!r} cannot be vendored offline")
        requirements.append(requirement)
    return requirements


def _marker_environment(runtime: str) -> dict[str, str]:
    """PEP 508 marker values of the FC runtime (Linux x86_64 CPython)."""
    version = runtime.removeprefix("python")
    return {
        "python_version": version,
        "python_full_version": f"{version}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "extra": "",
    }


def _applies(marker: Marker | None, environment: Mapping[str, str]) -> bool:
    return marker is None or marker.evaluate(dict(environment))


def _installed(name: str, search_path: Sequence[str]) -> metadata.Distribution | None:
    found = list(metadata.distributions(name=name, path=list(search_path)))
    return found[0] if found else None


def _label(distribution: metadata.Distribution) -> str:
    return f"{normalize_name(distribution.metadata['Name'])} {distribution.version}"


def _listed_files(distribution: metadata.Distribution) -> list[metadata.PackagePath]:
    listed = distribution.files
    if listed is None:
        raise PackagingError(f"{_label(distribution)} has no RECORD file list; reinstall it with pip")
    return list(listed)


def _installed_path(distribution: metadata.Distribution, file: str | os.PathLike[str]) -> Path:
    """Where ``file`` of ``distribution`` is on disk.

    ``locate_file`` is typed as returning any path-like object (importlib.metadata's
    ``SimplePath``); a distribution installed in a directory, the only kind vendored,
    answers a filesystem path.
    """
    located = distribution.locate_file(file)
    if not isinstance(located, os.PathLike):
        raise PackagingError(f"{_label(distribution)} is not installed in a directory ({located!r}); "
                             "install it with pip to vendor it")
    return Path(located)


def compiled_files(distribution: metadata.Distribution) -> list[str]:
    """The compiled extension files an installed distribution lists, sorted."""
    return _compiled_in(_listed_files(distribution))


def _compiled_in(listed: Iterable[metadata.PackagePath]) -> list[str]:
    return sorted(str(p) for p in listed if str(p).endswith(_COMPILED_SUFFIXES) or ".so." in p.name)


@dataclass(frozen=True)
class Closure:
    """What the handler's requirements need on one runtime, split by where it comes from."""

    vendored: tuple[metadata.Distribution, ...]  # pure Python, copied into the archive; sorted by name
    # compiled, left to the runtime: one "requirement (required by ...)" per requirer, sorted
    provided: tuple[str, ...]


def resolve_closure(requirements: Iterable[Requirement], runtime: str, search_path: Sequence[str]) -> Closure:
    """Walk ``requirements`` and every ``Requires-Dist`` below them for ``runtime``.

    Markers are evaluated for the runtime (no extras). A pure-Python
    distribution is vendored, whatever the runtime preinstalls; a compiled one
    is left to the runtime when the runtime provides it (``RUNTIME_PROVIDES``,
    not looked into further: its own dependencies come with it) and refused
    otherwise. Installed versions must satisfy every requirement met on the
    way and, when vendored, their ``Requires-Python`` must admit the runtime.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    if runtime not in RUNTIME_PROVIDES:
        raise PackagingError(f"runtime {runtime!r} is not supported; expected one of {sorted(RUNTIME_PROVIDES)}")
    provides = RUNTIME_PROVIDES[runtime]
    environment = _marker_environment(runtime)
    pending = [(r, "function requirements") for r in requirements]
    vendored: dict[str, metadata.Distribution] = {}
    provided: dict[str, set[str]] = {}
    while pending:
        requirement, wanted_by = pending.pop(0)
        name = normalize_name(requirement.name)
        if not _applies(requirement.marker, environment):
            continue
        if name in provided:
            provided[name].add(f"{requirement} (required by {wanted_by})")
            continue
        distribution = vendored.get(name) or _installed(requirement.name, search_path)
        compiled = compiled_files(distribution) if distribution is not None and name not in vendored else []
        if name in provides and (distribution is None or compiled):
            provided[name] = {f"{requirement} (required by {wanted_by})"}
            continue
        if distribution is None:
            raise PackagingError(
                f"run-time dependency {name!r} (required by {wanted_by}) is not installed in this "
                f"environment ({sys.executable}); install the pinned requirements first"
            )
        version = distribution.version
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            raise PackagingError(
                f"installed {name} {version} does not satisfy {str(requirement)!r} "
                f"(required by {wanted_by}); install the pinned version"
            )
        if name in vendored:
            continue
        if compiled:
            raise PackagingError(
                f"{_label(distribution)} contains compiled code ({', '.join(compiled[:3])}); it cannot be "
                f"vendored portably into the function archive and runtime {runtime} does not provide it: "
                "use a runtime that preinstalls it or a layer"
            )
        _require_python(distribution, runtime)
        vendored[name] = distribution
        for text in distribution.requires or ():
            try:
                pending.append((Requirement(text), _label(distribution)))
            except InvalidRequirement as error:
                raise PackagingError(f"{_label(distribution)}: invalid Requires-Dist {text!r}: {error}") from None
    return Closure(
        vendored=tuple(vendored[n] for n in sorted(vendored)),
        provided=tuple(entry for n in sorted(provided) for entry in sorted(provided[n])),
    )


def _require_python(distribution: metadata.Distribution, runtime: str) -> None:
    """Refuse a vendored distribution whose ``Requires-Python`` excludes the runtime."""
    # get_all: PackageMetadata declares get() only from Python 3.12.
    text = (distribution.metadata.get_all("Requires-Python") or [None])[0]
    if not text:
        return
    from packaging.specifiers import SpecifierSet

    python = _marker_environment(runtime)["python_full_version"]
    if not SpecifierSet(text).contains(python, prereleases=True):
        raise PackagingError(
            f"{_label(distribution)} requires Python {text}, which runtime {runtime} "
            f"(Python {python}) does not satisfy; pin a version that supports it"
        )


def _distribution_files(distribution: metadata.Distribution) -> dict[str, bytes]:
    """Archive path -> bytes of one installed pure-Python distribution, checked against RECORD."""
    label = _label(distribution)
    listed = _listed_files(distribution)  # RECORD, read once
    compiled = _compiled_in(listed)
    if compiled:  # resolve_closure refuses these first; kept so no caller can ship one
        raise PackagingError(f"{label} contains compiled code ({', '.join(compiled[:3])}); it cannot be vendored")
    files: dict[str, bytes] = {}
    for entry in listed:
        parts = entry.parts
        if parts[0] == ".." or any(p in ("__pycache__",) for p in parts) or entry.name.endswith((".pyc", ".pyo")):
            continue  # scripts installed outside site-packages; caches
        if parts[0].endswith(".dist-info") and entry.name in _SKIP_DIST_INFO:
            continue
        if parts[0].endswith(".data"):
            continue  # wheel data installed elsewhere (scripts, headers)
        data = _installed_path(distribution, entry).read_bytes()
        if entry.hash is not None and entry.hash.mode == "sha256":
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if digest != entry.hash.value:
                raise PackagingError(f"{label}: installed file {entry} differs from its RECORD hash; reinstall it")
        files["/".join(parts)] = data
    return files


def _source_files(source_dir: Path) -> dict[str, bytes]:
    """Archive path -> bytes of the function's own code."""
    files: dict[str, bytes] = {}
    for path in sorted(source_dir.rglob("*")):
        relative = path.relative_to(source_dir)
        parts = relative.parts
        if any(p in _SKIP_DIRS or p.startswith(".") or p.endswith(_SKIP_SUFFIXES) for p in parts):
            continue
        if not path.is_file():
            continue
        name = relative.name
        if len(parts) == 1 and name in _SKIP_TOP_FILES:
            continue
        if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
            continue
        if name.endswith(_COMPILED_SUFFIXES):
            raise PackagingError(f"{relative.as_posix()} in the function source is compiled code; ship source only")
        files[relative.as_posix()] = path.read_bytes()
    return files


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    """A deterministic zip of ``files``: sorted, fixed time, mode 0644, deflated.

    Entries are deflated by the pinned libdeflate, not the system zlib, whose
    output differs between builds (zlib-ng and Apple's zlib compress the same
    input differently): the same files give the same bytes, and the same
    checksum, on every machine (``mns_callback_flow.deterministic_zip``).
    """
    from mns_callback_flow.deterministic_zip import zip_archive

    return zip_archive(((name, files[name]) for name in sorted(files)), date_time=ZIP_EPOCH, mode=FILE_MODE)


def _top_level_names(paths: Iterable[str]) -> set[str]:
    """Importable top-level names of archive paths: ``mns_callback/x.py`` -> ``mns_callback``."""
    return {path.split("/", 1)[0].removesuffix(".py") for path in paths}


def merge_work_code(handler_files: Mapping[str, bytes], work_dir: Path) -> dict[str, bytes]:
    """The handler's files with the user's work code beside them, at the archive's root.

    A work module or package whose top-level name is one of the handler's own
    (``index``, ``mns_callback``) would shadow it, so it is refused by name.
    """
    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        raise PackagingError(f"work code directory {work_dir} not found")
    work_files = _source_files(work_dir)
    taken = _top_level_names(handler_files)
    for name in sorted(_top_level_names(work_files) & taken):
        raise PackagingError(
            f"work code {work_dir.name}/: {name!r} is a name of the handler's own code "
            f"({', '.join(sorted(taken))}); rename that module or package"
        )
    return {**handler_files, **work_files}


def build_archive(
    source_dir: Path = FUNCTION_DIR,
    runtime: str = "python3.10",
    *,
    work_dir: Path | None = None,
    requirements: Path | None = None,
    search_path: Sequence[str] | None = None,
) -> CodeArchive:
    """Build the code archive of ``source_dir`` for the FC ``runtime``.

    ``work_dir`` is the user's own work code, merged beside the handler
    (``merge_work_code``); its ``requirements.txt`` is vendored by the same
    rules as the handler's. ``requirements`` defaults to
    ``source_dir/requirements.txt`` (optional); ``search_path`` is where
    installed distributions are looked up (default ``sys.path``).
    """
    source_dir = Path(source_dir)
    if not (source_dir / ENTRY_MODULE).is_file():
        raise PackagingError(f"{source_dir.name}/{ENTRY_MODULE} not found: the FC handler 'index.*' lives there")
    files = _source_files(source_dir)
    requirement_files = [requirements if requirements is not None else source_dir / "requirements.txt"]
    if work_dir is not None:
        files = merge_work_code(files, Path(work_dir))
        requirement_files.append(Path(work_dir) / "requirements.txt")
    own_files = dict(files)
    search = list(sys.path if search_path is None else search_path)
    where = _build_key(source_dir, runtime, requirement_files, search)
    requirements_text = b"\0".join(path.read_bytes() if path.is_file() else b"" for path in requirement_files)
    built = _BUILT.get(where)
    if built is not None and built.made_from(own_files, requirements_text):
        return built.archive
    store_key = _store_key(where, own_files, requirements_text) if _STORE_DIR is not None else None
    stored = _stored(store_key) if store_key is not None else None
    if stored is not None:
        _remember(where, _Built(own_files, requirements_text, *stored))
        return stored[1]
    wanted = [r for path in requirement_files if path.is_file() for r in read_requirements(path)]
    closure = resolve_closure(wanted, runtime, search)
    used: list[tuple[Path, bytes | None]] = []  # each vendored file as read for this build, and each RECORD
    for distribution in closure.vendored:
        vendored_files = _distribution_files(distribution)
        for name, data in vendored_files.items():
            if name in files:
                raise PackagingError(
                    f"{name} of {distribution.metadata['Name']} would overwrite a file of the same path"
                )
            files[name] = data
        used.extend(_files_used(distribution, vendored_files))
    data = zip_bytes(files)
    archive = CodeArchive(
        data=data,
        base64=base64.b64encode(data).decode("ascii"),
        crc64=str(crc64_xz(data)),
        sha256=hashlib.sha256(data).hexdigest(),
        entries=tuple(sorted(files)),
        vendored=tuple(f"{normalize_name(d.metadata['Name'])}=={d.version}" for d in closure.vendored),
        provided=closure.provided,
    )
    if all(data is not None for _, data in used):
        _remember(where, _Built(own_files, requirements_text, tuple(used), archive))
        if store_key is not None:
            _store(store_key, tuple(used), archive)
    return archive


# ---- archives built in this process ------------------------------------------
# A program with many patterns, or a test suite, builds the same archive again
# and again; zipping and checksumming it is most of a render. An archive is
# reused only while everything its bytes come from is byte for byte what it
# was: the function's files (listed afresh, so an added or removed file
# counts), the requirements file, and every vendored file with its
# distribution's RECORD; and while no distribution was installed or removed
# on the search path (each directory's mtime). Otherwise it is built again.
# What is remembered is what the build itself read, so a file that changes
# while an archive is being built makes the next call build again. The bytes
# themselves are kept and compared (they are the zip's input, about its size
# again): comparing costs far less than hashing them on every call.


@dataclass(frozen=True)
class _Built:
    source: Mapping[str, bytes]  # the function's own files, path -> bytes
    requirements: bytes  # the requirements files' bytes, as ``build_archive`` joins them
    read: tuple[tuple[Path, bytes | None], ...]  # each vendored file and RECORD with its bytes, in order
    archive: CodeArchive

    def made_from(self, source: Mapping[str, bytes], requirements: bytes) -> bool:
        """Whether the archive's inputs are, byte for byte, what they were when it was built."""
        return (requirements == self.requirements and source == self.source
                and all(data is not None and _bytes_now(path) == data for path, data in self.read))


_BUILT: dict[tuple, _Built] = {}
_BUILT_LIMIT = 8  # bounded, oldest out first: each holds the zip and its base64 text


def _build_key(source_dir: Path, runtime: str, requirements: Sequence[Path], search_path: Sequence[str]) -> tuple:
    """Where an archive comes from: its inputs, and the state of each search-path directory."""
    directories = []
    for entry in search_path:
        try:
            directories.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            directories.append((entry, None))
    return (str(source_dir.resolve()), runtime, tuple(str(Path(r).resolve()) for r in requirements),
            tuple(directories))


def _files_used(distribution: metadata.Distribution, vendored: Mapping[str, bytes]) -> list[tuple[Path, bytes | None]]:
    """Each vendored file of ``distribution`` with the bytes the build used, then its RECORD."""
    base = _installed_path(distribution, "")
    info = sorted({name.split("/", 1)[0] for name in vendored if name.split("/", 1)[0].endswith(".dist-info")})
    records = [base / folder / "RECORD" for folder in info]
    return [(base / name, vendored[name]) for name in sorted(vendored)] + _read(records)


def _bytes_now(path: Path) -> bytes | None:
    """The file's bytes now, or None where it cannot be read."""
    try:
        with open(path, "rb") as handle:  # checked once per vendored file and pattern: cheaper than Path.read_bytes
            return handle.read()
    except OSError:
        return None


def _read(paths: Sequence[Path]) -> list[tuple[Path, bytes | None]]:
    """Each path with its bytes now, or None where it cannot be read."""
    read: list[tuple[Path, bytes | None]] = []
    for path in paths:
        try:
            read.append((path, path.read_bytes()))
        except OSError:
            read.append((path, None))
    return read


def _remember(where: tuple, built: _Built) -> None:
    _BUILT.pop(where, None)
    while len(_BUILT) >= _BUILT_LIMIT:
        del _BUILT[next(iter(_BUILT))]
    _BUILT[where] = built


# ---- archives built by earlier processes (opt-in) ------------------------------
# ``python -m infra.synth`` is one process per render: the cache above starts
# empty every time, and deflating the archive is most of what the render does
# beyond Pulumi's own work. ``keep_archives_in(directory)`` keeps each built
# archive there too. A stored archive is used only under the same rules as the
# in-process cache, checked afresh: its file name is a digest of everything the
# bytes come from (the function's files, the requirements, the runtime, each
# search-path directory with its mtime, the Python version, this module's and
# the zip writer's own source and the compressor's version and level); inside
# it, the SHA-256 of each vendored file and RECORD it was built from, read
# again and compared; and the archive's own SHA-256. Anything unreadable,
# stale or damaged is built again, through every check, and stored anew.

_STORE_DIR: Path | None = None
_STORE_FORMAT = 1
_STORE_LIMIT = 16  # archives kept in the directory, the least recently written dropped first


def keep_archives_in(directory: Path | None) -> Path | None:
    """Keep built archives in ``directory`` for later processes (None: in this process only);
    the directory used until now."""
    global _STORE_DIR
    previous, _STORE_DIR = _STORE_DIR, None if directory is None else Path(directory)
    return previous


def _store_key(where: tuple, source: Mapping[str, bytes], requirements: bytes) -> str:
    """The stored archive's name: a digest of everything its bytes come from but the vendored files."""
    from mns_callback_flow import deterministic_zip

    digest = hashlib.sha256()

    def field(value: bytes) -> None:
        digest.update(len(value).to_bytes(8, "big"))  # length-prefixed: no two inputs run together
        digest.update(value)

    field(repr((_STORE_FORMAT, where, sys.version, sys.implementation.cache_tag)).encode())
    field(repr((deterministic_zip.deflate.__version__, deterministic_zip.DEFLATE_LEVEL)).encode())
    for module in (__file__, deterministic_zip.__file__):
        field(Path(module).read_bytes())
    field(requirements)
    for name in sorted(source):
        field(name.encode())
        field(source[name])
    return digest.hexdigest()


def _stored(key: str) -> tuple[tuple[tuple[Path, bytes | None], ...], CodeArchive] | None:
    """(what it was built from, the archive) stored under ``key``, if still valid; else None."""
    if _STORE_DIR is None:
        return None
    try:
        header, _, data = (_STORE_DIR / f"{key}.archive").read_bytes().partition(b"\n")
        manifest = json.loads(header)
        if manifest["format"] != _STORE_FORMAT or hashlib.sha256(data).hexdigest() != manifest["sha256"]:
            return None
        read = _read([Path(path) for path, _ in manifest["read"]])
        if [None if got is None else hashlib.sha256(got).hexdigest() for _, got in read] != [
                digest for _, digest in manifest["read"]]:
            return None
        archive = CodeArchive(
            data=data,
            base64=base64.b64encode(data).decode("ascii"),
            crc64=str(crc64_xz(data)),
            sha256=manifest["sha256"],
            entries=tuple(manifest["entries"]),
            vendored=tuple(manifest["vendored"]),
            provided=tuple(manifest["provided"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return tuple(read), archive


def _store(key: str, read: Sequence[tuple[Path, bytes | None]], archive: CodeArchive) -> None:
    """Write ``archive`` under ``key``, atomically; a directory that cannot be written is skipped."""
    if _STORE_DIR is None:
        return
    manifest = {
        "format": _STORE_FORMAT,
        "sha256": archive.sha256,
        "entries": list(archive.entries),
        "vendored": list(archive.vendored),
        "provided": list(archive.provided),
        "read": [[str(path), hashlib.sha256(data).hexdigest()] for path, data in read if data is not None],
    }
    path = _STORE_DIR / f"{key}.archive"
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        _STORE_DIR.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(json.dumps(manifest, sort_keys=True).encode() + b"\n" + archive.data)
        os.replace(temporary, path)
        kept = sorted(_STORE_DIR.glob("*.archive"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in kept[_STORE_LIMIT:]:
            old.unlink(missing_ok=True)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def require_entry_point(source_dir: Path, handler: str, kind: str = "handler") -> None:
    """Fail early, naming it, when ``handler`` (``module.function``) is not defined at the
    top level of ``source_dir/module.py``: FC would only say so on the first push."""
    module, _, function = handler.rpartition(".")
    path = Path(source_dir) / f"{module.replace('.', '/')}.py"
    if not module or not path.is_file():
        raise PackagingError(f"{kind} {handler!r}: {path.name} not found in {Path(source_dir).name}/")
    if function not in _top_level_definitions(path.read_bytes(), str(path)):
        raise PackagingError(f"{kind} {handler!r}: {path.name} defines no top-level {function!r}")


@functools.lru_cache(maxsize=32)
def _top_level_definitions(source: bytes, filename: str) -> frozenset[str]:
    """Names a module's source defines at its top level (functions, assignments, imports).

    Cached on the source's bytes: every pattern of a program checks the same
    handler, and parsing it is most of that check.
    """
    tree = ast.parse(source, filename=filename)
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        defined |= {t.id for t in targets if isinstance(t, ast.Name)}
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(defined)


def write_archive(archive: CodeArchive, build_dir: Path = DEFAULT_BUILD_DIR) -> Path:
    """Write ``archive`` to ``build_dir`` under a content-addressed name; return the path.

    The same bytes always land at the same path, written atomically, so
    concurrent builds of one stack cannot leave a half-written file behind.
    """
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / f"function-{archive.sha256[:16]}.zip"
    if path.is_file() and path.read_bytes() == archive.data:
        return path
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(archive.data)
    os.chmod(temporary, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    os.replace(temporary, path)
    return path
