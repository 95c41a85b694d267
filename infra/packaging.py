"""The callback function's code archive: a deterministic zip of ``function/``.

Function Compute takes the code as a zip (FC 3.0: base64 in ``code.zip_file``
with a CRC-64/XZ ``checksum``; FC 2.0: a file path plus ``code_checksum``).
The same source and the same installed dependencies always give the same
bytes, so ``pulumi preview`` shows no code change when nothing changed:
entries are sorted, every timestamp is 1980-01-01 and every file is 0644.

Run-time dependencies listed in ``function/requirements.txt`` are vendored
from the distributions installed in this environment (their RECORD file
lists), so building needs no network. Those the chosen FC runtime already
preinstalls are left out; pure-Python code only, because the archive must
run on Function Compute's Linux whatever machine built it.

Everything here is pure apart from reading files (and ``write_archive``).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import os
import re
import stat
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import crc
from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement

PROJECT_DIR = Path(__file__).resolve().parent.parent
FUNCTION_DIR = PROJECT_DIR / "function"
BUILD_DIR = PROJECT_DIR / "build"

# The zip format cannot store times before 1980; a fixed one keeps bytes stable.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
ENTRY_MODULE = "index.py"

# CRC-64/XZ (a.k.a. CRC-64/GO-ECMA): the ECMA-182 polynomial, reflected, with
# all-ones init and final xor. FC's ``checksum`` / ``code_checksum`` is this CRC
# of the zip as an unsigned decimal (docs/platform-facts.md; the OSS/FC "x-oss-hash-crc64ecma").
CRC64_XZ = crc.Configuration(
    width=64,
    polynomial=0x42F0E1EBA9EA3693,
    init_value=0xFFFFFFFFFFFFFFFF,
    final_xor_value=0xFFFFFFFFFFFFFFFF,
    reverse_input=True,
    reverse_output=True,
)

_NORMALIZE = re.compile(r"[-_.]+")


def normalize_name(name: str) -> str:
    """PEP 503 name, so ``aliyun_python_sdk_core`` and ``aliyun-python-sdk-core`` match."""
    return _NORMALIZE.sub("-", name).lower()


def _names(*names: str) -> frozenset[str]:
    return frozenset(normalize_name(n) for n in names)


# What each FC Python runtime preinstalls, as far as it matters to vendoring
# (FC docs "Python runtime" / "runtime overview", via docs/platform-facts.md). Names marked
# "inferred" are dependencies of a documented package, so they are present too.
_PYTHON3_10_ERA = _names(
    "oss2", "tablestore", "aliyun-fc2", "aliyun-mns", "requests",
    "aliyun-python-sdk-ecs", "aliyun-python-sdk-vpc", "aliyun-python-sdk-rds",
    "aliyun-python-sdk-kms", "aliyun-python-sdk-cdn", "aliyun-python-sdk-ram",
    "aliyun-python-sdk-sts", "aliyun-python-sdk-iot", "pyOpenSSL",
    "aliyun-python-sdk-core", "jmespath",  # inferred: the SDK products need core
    "cryptography", "cffi", "pycparser",  # inferred: pyOpenSSL needs them
    "urllib3", "idna", "certifi", "charset-normalizer",  # inferred: requests
)
PREINSTALLED: Mapping[str, frozenset[str]] = {
    "python3.9": _PYTHON3_10_ERA,
    "python3.10": _PYTHON3_10_ERA,
    # python3.12 ships the new alibabacloud_* SDKs instead of aliyun-python-sdk-core.
    "python3.12": _names(
        "pyOpenSSL", "cryptography", "cffi", "pycparser",
        "requests", "urllib3", "idna", "certifi", "charset-normalizer",
    ),
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


def crc64_xz(data: bytes) -> int:
    """CRC-64/XZ of ``data``.

    The ``crc`` library defines the algorithm (``CRC64_XZ``) and is the test
    oracle, but its byte loop costs about 10 s per MiB; this reflected table
    loop gives the same value a few dozen times faster.
    """
    value = CRC64_XZ.init_value
    table = _reflected_table()
    for byte in data:
        value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
    return value ^ CRC64_XZ.final_xor_value


_TABLE: list[int] = []


def _reflected_table() -> list[int]:
    if not _TABLE:
        poly = int(f"{CRC64_XZ.polynomial:064b}"[::-1], 2)  # bit-reversed polynomial
        for index in range(256):
            value = index
            for _ in range(8):
                value = (value >> 1) ^ poly if value & 1 else value >> 1
            _TABLE.append(value)
    return _TABLE


def read_requirements(path: Path) -> list[Requirement]:
    """The requirements in ``path``: one PEP 508 requirement a line, ``#`` comments."""
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


def _find_distribution(name: str, search_path: Sequence[str]) -> metadata.Distribution:
    found = list(metadata.distributions(name=name, path=list(search_path)))
    if not found:
        raise PackagingError(
            f"run-time dependency {name!r} is not installed in this environment "
            f"({sys.executable}); install the pinned requirements first"
        )
    return found[0]


def resolve_vendored(
    requirements: Iterable[Requirement], runtime: str, search_path: Sequence[str]
) -> list[metadata.Distribution]:
    """The installed distributions to vendor for ``runtime``, sorted by name.

    Walks the requirements and their ``Requires-Dist`` (no extras, markers
    evaluated for the runtime), stopping at what the runtime preinstalls.
    """
    if runtime not in PREINSTALLED:
        raise PackagingError(f"runtime {runtime!r} is not supported; expected one of {sorted(PREINSTALLED)}")
    preinstalled = PREINSTALLED[runtime]
    environment = _marker_environment(runtime)
    pending = [(r, "function requirements") for r in requirements]
    chosen: dict[str, metadata.Distribution] = {}
    while pending:
        requirement, wanted_by = pending.pop(0)
        name = normalize_name(requirement.name)
        if name in preinstalled or name in chosen or not _applies(requirement.marker, environment):
            continue
        distribution = _find_distribution(requirement.name, search_path)
        version = distribution.version
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            raise PackagingError(
                f"installed {name} {version} does not satisfy {str(requirement)!r} "
                f"(required by {wanted_by}); install the pinned version"
            )
        chosen[name] = distribution
        for text in distribution.requires or ():
            pending.append((Requirement(text), f"{name} {version}"))
    return [chosen[name] for name in sorted(chosen)]


def _distribution_files(distribution: metadata.Distribution) -> dict[str, bytes]:
    """Archive path -> bytes of one installed distribution, checked against RECORD."""
    label = f"{distribution.metadata['Name']} {distribution.version}"
    listed = distribution.files
    if listed is None:
        raise PackagingError(f"{label} has no RECORD file list; reinstall it with pip")
    compiled = sorted(str(p) for p in listed if str(p).endswith(_COMPILED_SUFFIXES) or ".so." in p.name)
    if compiled:
        raise PackagingError(
            f"{label} contains compiled code ({', '.join(compiled[:3])}); it cannot be vendored "
            "portably into the function archive: use a runtime that preinstalls it or a layer"
        )
    files: dict[str, bytes] = {}
    for entry in listed:
        parts = entry.parts
        if parts[0] == ".." or any(p in ("__pycache__",) for p in parts) or entry.name.endswith((".pyc", ".pyo")):
            continue  # scripts installed outside site-packages; caches
        if parts[0].endswith(".dist-info") and entry.name in _SKIP_DIST_INFO:
            continue
        if parts[0].endswith(".data"):
            continue  # wheel data installed elsewhere (scripts, headers)
        data = Path(distribution.locate_file(entry)).read_bytes()
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
    """A deterministic zip of ``files``: sorted, fixed time, mode 0644, stored.

    Entries are stored, not deflated: deflate output depends on the zlib build
    (zlib-ng and Apple's zlib compress the same input differently), so a
    deflated archive would change its checksum, and show a diff in the next
    preview, whenever the stack is deployed from another machine.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = 3  # Unix, so the mode bits below are honoured
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, files[name])
    return buffer.getvalue()


def build_archive(
    source_dir: Path = FUNCTION_DIR,
    runtime: str = "python3.10",
    *,
    requirements: Path | None = None,
    search_path: Sequence[str] | None = None,
) -> CodeArchive:
    """Build the code archive of ``source_dir`` for the FC ``runtime``.

    ``requirements`` defaults to ``source_dir/requirements.txt`` (optional);
    ``search_path`` is where installed distributions are looked up
    (default ``sys.path``).
    """
    source_dir = Path(source_dir)
    if not (source_dir / ENTRY_MODULE).is_file():
        raise PackagingError(f"{source_dir.name}/{ENTRY_MODULE} not found: the FC handler 'index.*' lives there")
    files = _source_files(source_dir)
    requirements_path = requirements if requirements is not None else source_dir / "requirements.txt"
    wanted = read_requirements(requirements_path) if requirements_path.is_file() else []
    distributions = resolve_vendored(wanted, runtime, sys.path if search_path is None else search_path)
    for distribution in distributions:
        for name, data in _distribution_files(distribution).items():
            if name in files:
                raise PackagingError(
                    f"{name} of {distribution.metadata['Name']} would overwrite a file of the same path"
                )
            files[name] = data
    data = zip_bytes(files)
    return CodeArchive(
        data=data,
        base64=base64.b64encode(data).decode("ascii"),
        crc64=str(crc64_xz(data)),
        sha256=hashlib.sha256(data).hexdigest(),
        entries=tuple(sorted(files)),
        vendored=tuple(f"{normalize_name(d.metadata['Name'])}=={d.version}" for d in distributions),
    )


def require_entry_point(source_dir: Path, handler: str, kind: str = "handler") -> None:
    """Fail early, naming it, when ``handler`` (``module.function``) is not defined at the
    top level of ``source_dir/module.py``: FC would only say so on the first push."""
    module, _, function = handler.rpartition(".")
    path = Path(source_dir) / f"{module.replace('.', '/')}.py"
    if not module or not path.is_file():
        raise PackagingError(f"{kind} {handler!r}: {path.name} not found in {Path(source_dir).name}/")
    tree = ast.parse(path.read_bytes(), filename=str(path))
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        defined |= {t.id for t in targets if isinstance(t, ast.Name)}
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
    if function not in defined:
        raise PackagingError(f"{kind} {handler!r}: {path.name} defines no top-level {function!r}")


def write_archive(archive: CodeArchive, build_dir: Path = BUILD_DIR) -> Path:
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
