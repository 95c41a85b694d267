"""The function's code archive: deterministic bytes, the right contents, a checksum FC accepts."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import crc
import pytest

from infra import packaging
from infra.packaging import (
    PackagingError,
    build_archive,
    crc64_xz,
    require_entry_point,
    write_archive,
)

REPO = Path(__file__).resolve().parent.parent
SITE_PACKAGES = Path(packaging.metadata.distribution("aliyun-python-sdk-core").locate_file(""))

HANDLER = textwrap.dedent(
    """\
    import json

    from aliyunsdkcore.client import AcsClient
    from aliyunsdkfnf.request.v20190315.ReportTaskSucceededRequest import ReportTaskSucceededRequest

    from callback import core


    def handler(event, context):
        request = ReportTaskSucceededRequest()
        request.set_TaskToken("token")
        return json.dumps({"action": request.get_action_name(), "client": AcsClient.__name__, "core": core.NAME})
    """
)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A function source tree with the junk the archive must leave out."""
    root = tmp_path / "function"
    (root / "callback" / "__pycache__").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / ".idea").mkdir()
    (root / "index.py").write_text(HANDLER)
    (root / "callback" / "__init__.py").write_text("")
    (root / "callback" / "core.py").write_text("NAME = 'core'\n")
    (root / "callback" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"\x00junk")
    (root / "callback" / "stale.pyc").write_bytes(b"\x00junk")
    (root / "tests" / "test_core.py").write_text("def test(): pass\n")
    (root / "test_index.py").write_text("def test(): pass\n")
    (root / ".idea" / "workspace.xml").write_text("<x/>")
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "requirements.txt").write_text(
        "# run-time needs\naliyun-python-sdk-fnf==1.8.3\naliyun-python-sdk-core==2.16.1  # preinstalled on 3.10\n"
    )
    return root


def fake_distribution(site: Path, name: str, files: dict[str, bytes], record_hash: bool = True) -> None:
    """An installed distribution in ``site`` as pip leaves it: dist-info with METADATA and RECORD."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = [f"{name}-1.0.dist-info/METADATA,,", f"{name}-1.0.dist-info/RECORD,,"]
    for relative, data in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{relative},sha256={digest if record_hash else 'A' * 43},{len(data)}")
    (info / "RECORD").write_text("\n".join(lines) + "\n")


def test_checksum_is_crc64_xz_known_answer() -> None:
    # docs/platform-facts.md check value, and the standard CRC-64/XZ check of "123456789".
    assert crc64_xz(b"print('hello')") == 4270285996107335518
    assert crc64_xz(b"123456789") == 0x995DC9BBDF1939FA
    assert crc64_xz(b"") == 0


def test_checksum_matches_the_crc_library(source: Path) -> None:
    archive = build_archive(source, "python3.10")
    oracle = crc.Calculator(packaging.CRC64_XZ, optimized=True)
    assert archive.crc64 == str(oracle.checksum(archive.data))
    assert archive.sha256 == hashlib.sha256(archive.data).hexdigest()
    assert base64.b64decode(archive.base64) == archive.data


def test_build_is_byte_identical_across_builds_and_copies(source: Path, tmp_path: Path) -> None:
    first = build_archive(source, "python3.10")
    copy = tmp_path / "elsewhere" / "function"
    shutil.copytree(source, copy)
    os.utime(copy / "index.py", (1_700_000_000, 1_700_000_000))
    (copy / "index.py").chmod(0o755)
    second = build_archive(copy, "python3.10")
    assert first.data == second.data
    assert first == second


def test_entries_sorted_with_fixed_times_and_modes(source: Path) -> None:
    archive = build_archive(source, "python3.10")
    with zipfile.ZipFile(io.BytesIO(archive.data)) as opened:
        infos = opened.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos) == list(archive.entries)
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
            assert info.external_attr >> 16 == 0o100644, info.filename
            assert info.compress_type == zipfile.ZIP_STORED
        assert opened.read("callback/core.py") == b"NAME = 'core'\n"
        assert opened.testzip() is None


def test_junk_is_left_out_and_handler_code_kept(source: Path) -> None:
    entries = set(build_archive(source, "python3.10").entries)
    assert {"index.py", "callback/__init__.py", "callback/core.py"} <= entries
    for entry in entries:
        assert "__pycache__" not in entry and not entry.endswith((".pyc", ".pyo")), entry
        assert not entry.startswith(("tests/", ".idea/")) and entry not in {"test_index.py", ".DS_Store"}, entry
        assert entry != "requirements.txt"
        assert not entry.endswith(("/RECORD", "/INSTALLER", "/REQUESTED")), entry


def test_vendors_only_what_the_runtime_lacks(source: Path) -> None:
    # python3.10 preinstalls aliyun-python-sdk-core (and so jmespath, cryptography).
    on_310 = build_archive(source, "python3.10")
    assert on_310.vendored == ("aliyun-python-sdk-fnf==1.8.3",)
    assert "aliyunsdkfnf/request/v20190315/ReportTaskSucceededRequest.py" in on_310.entries
    assert not any(e.startswith(("aliyunsdkcore/", "jmespath/", "cryptography/")) for e in on_310.entries)
    # python3.12 has the new SDKs only: core and its pure dependency jmespath travel too.
    on_312 = build_archive(source, "python3.12")
    assert on_312.vendored == ("aliyun-python-sdk-core==2.16.1", "aliyun-python-sdk-fnf==1.8.3", "jmespath==1.1.0")
    assert "aliyunsdkcore/client.py" in on_312.entries and "jmespath/parser.py" in on_312.entries
    assert not any(e.startswith("cryptography/") for e in on_312.entries)


def test_vendored_files_are_the_installed_ones(source: Path) -> None:
    archive = build_archive(source, "python3.10")
    installed = SITE_PACKAGES / "aliyunsdkfnf" / "endpoint.py"
    with zipfile.ZipFile(io.BytesIO(archive.data)) as opened:
        assert opened.read("aliyunsdkfnf/endpoint.py") == installed.read_bytes()


def test_compiled_dependency_is_refused_by_name(source: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "fastthing", {
        "fastthing/__init__.py": b"",
        "fastthing/_speedups.cpython-310-x86_64-linux-gnu.so": b"\x7fELF",
    })
    (source / "requirements.txt").write_text("fastthing==1.0\n")
    with pytest.raises(PackagingError, match=r"fastthing 1\.0 contains compiled code \(fastthing/_speedups"):
        build_archive(source, "python3.10", search_path=[str(site)])


def test_missing_distribution_is_named(source: Path, tmp_path: Path) -> None:
    (source / "requirements.txt").write_text("aliyun-python-sdk-fnf==1.8.3\n")
    with pytest.raises(PackagingError, match=r"'aliyun-python-sdk-fnf' is not installed"):
        build_archive(source, "python3.10", search_path=[str(tmp_path / "empty")])


def test_pin_mismatch_and_bad_lines_are_named(source: Path) -> None:
    (source / "requirements.txt").write_text("aliyun-python-sdk-fnf==9.9.9\n")
    with pytest.raises(PackagingError, match=r"installed aliyun-python-sdk-fnf 1\.8\.3 does not satisfy"):
        build_archive(source, "python3.10")
    (source / "requirements.txt").write_text("-r other.txt\n")
    with pytest.raises(PackagingError, match=r"requirements\.txt:1: option '-r'"):
        build_archive(source, "python3.10")
    (source / "requirements.txt").write_text("ok==1\nnot a requirement!\n")
    with pytest.raises(PackagingError, match=r"requirements\.txt:2: invalid requirement"):
        build_archive(source, "python3.10")


def test_modified_installed_file_is_refused(source: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "tampered", {"tampered/__init__.py": b"x = 1\n"}, record_hash=False)
    (source / "requirements.txt").write_text("tampered\n")
    with pytest.raises(PackagingError, match=r"tampered/__init__\.py differs from its RECORD hash"):
        build_archive(source, "python3.10", search_path=[str(site)])


def test_unknown_runtime_and_missing_entry_module(source: Path) -> None:
    with pytest.raises(PackagingError, match=r"runtime 'python2\.7' is not supported"):
        build_archive(source, "python2.7")
    (source / "index.py").unlink()
    with pytest.raises(PackagingError, match=r"index\.py not found"):
        build_archive(source, "python3.10")


def test_write_archive_is_content_addressed(source: Path, tmp_path: Path) -> None:
    archive = build_archive(source, "python3.10")
    path = write_archive(archive, tmp_path / "build")
    assert path.name == f"function-{archive.sha256[:16]}.zip"
    assert path.read_bytes() == archive.data
    assert write_archive(archive, tmp_path / "build") == path
    assert [p.name for p in (tmp_path / "build").iterdir()] == [path.name]


# Among the packages this environment has, what each FC runtime preinstalls
# (docs/platform-facts.md "Python runtimes": python3.12 has pyOpenSSL, so cryptography, but no
# aliyun-python-sdk-core).
RUNTIME_PACKAGES = {
    "python3.10": ["aliyunsdkcore", "jmespath", "cryptography", "cffi", "pycparser"],
    "python3.12": ["cryptography", "cffi", "pycparser"],
}


def preinstalled(target: Path, runtime: str = "python3.10") -> Path:
    """A directory holding only what the FC ``runtime`` preinstalls among our dependencies."""
    target.mkdir(parents=True)
    names = list(RUNTIME_PACKAGES[runtime])
    names += [p.name for p in SITE_PACKAGES.glob("_cffi_backend*")]
    for name in names:
        (target / name).symlink_to(SITE_PACKAGES / name)
    return target


def import_handler_isolated(
    archive_data: bytes, tmp_path: Path, call: str, runtime: str = "python3.10"
) -> subprocess.CompletedProcess:
    """Unzip the archive and import ``index`` in a fresh interpreter that sees only it + preinstalled."""
    code_dir = tmp_path / "code"
    with zipfile.ZipFile(io.BytesIO(archive_data)) as opened:
        opened.extractall(code_dir)
    runtime_dir = preinstalled(tmp_path / "runtime", runtime)
    script = textwrap.dedent(
        f"""\
        import sys
        sys.path[:0] = [{str(code_dir)!r}, {str(runtime_dir)!r}]
        assert not any("site-packages" in p for p in sys.path), sys.path
        import index
        {call}
        """
    )
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )


def test_unzipped_handler_runs_on_what_python310_preinstalls(source: Path, tmp_path: Path) -> None:
    archive = build_archive(source, "python3.10")
    result = import_handler_isolated(archive.data, tmp_path, "print(index.handler(b'{}', None))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"action": "ReportTaskSucceeded", "client": "AcsClient", "core": "core"}'


def test_without_vendoring_the_isolated_import_fails(source: Path, tmp_path: Path) -> None:
    # The control for the test above: the fnf SDK really comes from the archive.
    (source / "requirements.txt").write_text("")
    archive = build_archive(source, "python3.10")
    result = import_handler_isolated(archive.data, tmp_path, "")
    assert result.returncode != 0
    assert "No module named 'aliyunsdkfnf'" in result.stderr


def test_python312_archive_carries_the_core_sdk(source: Path, tmp_path: Path) -> None:
    archive = build_archive(source, "python3.12")
    result = import_handler_isolated(archive.data, tmp_path, "print(index.handler(b'{}', None))", "python3.12")
    assert result.returncode == 0, result.stderr
    assert '"client": "AcsClient"' in result.stdout
    # The control: the python3.10 archive lacks aliyunsdkcore, which python3.12 does not have.
    lean = build_archive(source, "python3.10")
    result = import_handler_isolated(lean.data, tmp_path / "lean", "", "python3.12")
    assert "No module named 'aliyunsdkcore'" in result.stderr


@pytest.mark.skipif(not (REPO / "function" / "index.py").is_file(), reason="function/index.py not written yet")
@pytest.mark.parametrize("runtime", ["python3.10", "python3.12"])
def test_real_function_archive_imports_on_its_runtime(runtime: str, tmp_path: Path) -> None:
    archive = build_archive(REPO / "function", runtime)
    result = import_handler_isolated(
        archive.data, tmp_path, "assert callable(index.handler) and callable(index.wsgi_handler)", runtime
    )
    assert result.returncode == 0, result.stderr


def test_entry_point_must_be_defined(source: Path) -> None:
    require_entry_point(source, "index.handler")
    with pytest.raises(PackagingError, match=r"handler 'index.wsgi_handler': index.py defines no top-level 'wsgi_handler'"):
        require_entry_point(source, "index.wsgi_handler")
    (source / "index.py").write_text("from callback.core import NAME as wsgi_handler\n")
    require_entry_point(source, "index.wsgi_handler")
    with pytest.raises(PackagingError, match=r"handler 'main.handler': main.py not found"):
        require_entry_point(source, "main.handler")


def test_real_function_defines_both_entry_points() -> None:
    require_entry_point(REPO / "function", "index.handler")
    require_entry_point(REPO / "function", "index.wsgi_handler")
