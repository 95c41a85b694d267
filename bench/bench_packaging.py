"""The function's code archive per runtime: build time, size, and cold-start import cost.

The archive is rebuilt on every `pulumi preview`/`up` and every offline
render, so it has to stay well under a second. Every runtime carries the same
vendored set (aliyun-python-sdk-fnf, aliyun-python-sdk-core, jmespath), which
a new instance imports from the unzipped archive: ``index`` on its first
event, the SDK on its first report (and, through the SDK's signer, the
runtime's cryptography). Each import is timed in a fresh ``python -I -S -B``
that sees only the unzipped archive and the cryptography stack the runtime
provides (this environment's copy), best of a few processes: ``-B`` because
the archive carries no bytecode, so a new instance compiles what it imports.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

import crc

from bench.measure import FULL, Size, summary
from infra.config import RUNTIMES
from mns_callback_flow.packaging import CRC64_XZ, FUNCTION_DIR, build_archive, crc64_xz

ROUNDS = 5
IMPORT_ROUNDS = 5
# What every FC Python runtime provides among the handler's dependencies
# (docs/platform-facts.md "What each FC Python runtime provides").
RUNTIME_PROVIDED = ("cryptography", "cffi", "pycparser")
# What aliyun-python-sdk-core's signer imports from the runtime's cryptography
# (aliyunsdkcore/auth/algorithm/sha_hmac256.py), timed apart from the SDK.
CRYPTOGRAPHY_IMPORTS = (
    "cryptography.hazmat.backends",
    "cryptography.hazmat.primitives.hashes",
    "cryptography.hazmat.primitives.asymmetric.padding",
    "cryptography.hazmat.primitives.serialization",
)
# What the handler's first report imports (function/mns_callback/report.py).
FIRST_REPORT_IMPORTS = (
    "aliyunsdkcore.auth.credentials",
    "aliyunsdkcore.client",
    "aliyunsdkcore.http.protocol_type",
    "aliyunsdkfnf.request.v20190315.ReportTaskSucceededRequest",
)

_PROBE = """\
import sys, time, json
sys.path[:0] = {paths!r}
start = time.perf_counter()
import index
indexed = time.perf_counter()
for name in {crypto!r}:
    __import__(name)
crypted = time.perf_counter()
for name in {modules!r}:
    __import__(name)
done = time.perf_counter()
print(json.dumps({{"index": indexed - start, "runtime_cryptography": crypted - indexed,
                  "vendored_sdk": done - crypted}}))
"""


def _best_of(rounds: int, action) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def runtime_dir(target: Path) -> Path:
    """Links to this environment's cryptography stack, standing in for the runtime's."""
    site = Path(metadata.distribution("cryptography").locate_file(""))
    target.mkdir()
    for path in site.iterdir():
        if path.name in RUNTIME_PROVIDED or path.name.startswith("_cffi_backend"):
            (target / path.name).symlink_to(path)
    return target


def _best_imports(probe: str, cwd: Path, flags: list[str]) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(IMPORT_ROUNDS):
        ran = subprocess.run([sys.executable, "-I", "-S", *flags, "-c", probe], cwd=cwd,
                             capture_output=True, text=True, check=True, timeout=60)
        for key, seconds in json.loads(ran.stdout).items():
            best[key] = min(best.get(key, seconds), seconds)
    return best


def import_cost(archive_data: bytes) -> dict[str, float]:
    """Best-of seconds to import, cold: ``index``; the runtime's cryptography; the vendored SDK.

    ``vendored_sdk_with_bytecode`` is the SDK's import once its bytecode is
    cached, for comparison: what a precompiled copy would cost instead.
    """
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        code_dir = root / "code"
        with zipfile.ZipFile(io.BytesIO(archive_data)) as opened:
            opened.extractall(code_dir)
        probe = _PROBE.format(paths=[str(code_dir), str(runtime_dir(root / "runtime"))],
                              crypto=CRYPTOGRAPHY_IMPORTS, modules=FIRST_REPORT_IMPORTS)
        cold = _best_imports(probe, root, ["-B"])
        cached = _best_imports(probe, root, [])  # the first round writes __pycache__
    results = {f"import_{key}_seconds": round(seconds, 4) for key, seconds in cold.items()}
    results["import_vendored_sdk_with_bytecode_seconds"] = round(cached["vendored_sdk"], 4)
    return results


def naive_pip_archive_bytes(requirements: Path = FUNCTION_DIR / "requirements.txt") -> tuple[int | None, str]:
    """Bytes of what a new user would ship instead: ``pip install -t`` of the function's
    requirements, zipped (deflated) as it lands; (None, why) where pip cannot install."""
    with tempfile.TemporaryDirectory() as temporary:
        target = Path(temporary) / "naive"
        ran = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "--no-compile", "--target", str(target), "-r", str(requirements)],
                             capture_output=True, text=True, timeout=600, check=False)
        if ran.returncode != 0:
            return None, f"pip install -t failed (is the package index reachable?): {ran.stderr.strip()[-300:]}"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(target.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(target).as_posix())
        listed = sorted(p.name for p in target.iterdir() if p.name.endswith(".dist-info"))
        return len(buffer.getvalue()), ", ".join(listed)


def archive_vs_pip(size: Size) -> dict:
    results: dict[str, object] = {"target": "archive bytes / naive pip -t zip <= 0.25 for every runtime"}
    naive, what = naive_pip_archive_bytes() if size.naive_pip else (None, "not run at this size")
    results["naive_pip_zip_bytes"] = naive
    results["naive_pip_installed" if naive else "naive_pip_skipped"] = what
    meets = naive is not None
    for runtime in RUNTIMES:
        archive = build_archive(FUNCTION_DIR, runtime)
        row: dict[str, object] = {"archive_bytes": len(archive.data), "vendored": list(archive.vendored)}
        if naive:
            row["ratio"] = round(len(archive.data) / naive, 3)
            meets = meets and row["ratio"] <= 0.25
        results[runtime] = row
    results["meets_target"] = meets
    return results


def archive_build(size: Size) -> dict:
    """Build time of the archive: first in this process, then for the same source again."""
    from mns_callback_flow import packaging

    results: dict[str, object] = {}
    for runtime in RUNTIMES:
        packaging._BUILT.clear()
        first = []
        for _ in range(max(1, size.rounds // 2)):
            packaging._BUILT.clear()
            first.append(_best_of(1, lambda r=runtime: build_archive(FUNCTION_DIR, r)))
        again = [_best_of(1, lambda r=runtime: build_archive(FUNCTION_DIR, r)) for _ in range(max(1, size.rounds // 2))]
        data = build_archive(FUNCTION_DIR, runtime).data
        results[runtime] = {"first_build_seconds": summary(first, 4), "same_source_again_seconds": summary(again, 4),
                            "crc64_seconds": round(_best_of(1, lambda d=data: crc64_xz(d)), 4)}
    return results


def figures(size: Size = FULL) -> dict:
    return {"archive_vs_pip": archive_vs_pip(size), "archive_build": archive_build(size)}


def main() -> dict:
    """The per-runtime detail: size, build time, import cost of the unzipped archive."""
    results: dict[str, object] = {}
    for runtime in RUNTIMES:
        archive = build_archive(FUNCTION_DIR, runtime)
        results[runtime] = {
            "archive_bytes": len(archive.data),
            "entries": len(archive.entries),
            "vendored": list(archive.vendored),
            "provided_by_runtime": list(archive.provided),
            **import_cost(archive.data),
        }
    # The pinned crc library's own loop, for comparison (the reason for crc64_xz);
    # once, on the default runtime's archive: it costs about 10 s per MiB.
    default = build_archive(FUNCTION_DIR, "python3.10")
    results["crc64_library_seconds"] = round(
        _best_of(1, lambda: crc.Calculator(CRC64_XZ, optimized=True).checksum(default.data)), 4
    )
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2, sort_keys=True))
