"""The function's code archive: deterministic bytes, the right contents, a checksum FC accepts."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import crc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.version import Version

from infra.config import RUNTIMES
from localcloud.fc_runtime import build_event
from localcloud.fnf_api import FnFEndpoint, Report, TokenRegistry
from localcloud.mns_push import CertServer, Message, Subscription, build_push
from mns_callback_flow import packaging
from mns_callback_flow.packaging import (
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
        "# run-time needs\naliyun-python-sdk-fnf==1.8.3\naliyun-python-sdk-core==2.16.1  # vendored too\n"
    )
    return root


def fake_distribution(
    site: Path,
    name: str,
    files: dict[str, bytes],
    record_hash: bool = True,
    requires: tuple[str, ...] = (),
    requires_python: str | None = None,
) -> None:
    """An installed distribution in ``site`` as pip leaves it: dist-info with METADATA and RECORD."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    headers = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    headers += [f"Requires-Python: {requires_python}"] if requires_python else []
    headers += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(headers) + "\n")
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


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.binary(max_size=4096))
def test_checksum_agrees_with_the_crc_library_on_any_bytes(data: bytes) -> None:
    assert crc64_xz(data) == crc.Calculator(packaging.CRC64_XZ, optimized=True).checksum(data)


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
            # Deflated by the pinned libdeflate; stored only where deflating would not make it smaller.
            if info.compress_type == zipfile.ZIP_STORED:
                assert info.compress_size == info.file_size, info.filename
            else:
                assert info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size < info.file_size
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


PURE_CLOSURE = ("aliyun-python-sdk-core==2.16.1", "aliyun-python-sdk-fnf==1.8.3", "jmespath==1.1.0")
PROVIDED = ("cryptography>=3.0.0 (required by aliyun-python-sdk-core 2.16.1)",)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_runtime_vendors_the_whole_pure_closure(source: Path, runtime: str) -> None:
    # No runtime states which aliyun-python-sdk-core or jmespath it carries, if any:
    # every pure dependency travels; compiled cryptography is left to the runtime.
    archive = build_archive(source, runtime)
    assert archive.vendored == PURE_CLOSURE
    assert archive.provided == PROVIDED
    for module in ("aliyunsdkfnf/request/v20190315/ReportTaskSucceededRequest.py",
                   "aliyunsdkcore/client.py", "jmespath/parser.py"):
        assert module in archive.entries, module
    assert not any(e.startswith(("cryptography/", "cffi/", "_cffi_backend", "pycparser/")) for e in archive.entries)


def test_the_closure_follows_requires_dist_and_leaves_compiled_code_to_the_runtime(
    source: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "top", {"top/__init__.py": b""}, requires=("middle>=1", "cryptography>=2.0"))
    fake_distribution(site, "middle", {"middle/__init__.py": b""}, requires=(
        "leaf", "windowsonly; sys_platform == 'win32'", "optional; extra == 'more'", "cryptography>=3.1"))
    fake_distribution(site, "leaf", {"leaf/__init__.py": b""})
    fake_distribution(site, "cryptography", {"cryptography/_rust.abi3.so": b"\x7fELF"}, requires=("cffi",))
    (source / "requirements.txt").write_text("top\n")
    archive = build_archive(source, "python3.10", search_path=[str(site)])
    assert archive.vendored == ("leaf==1.0", "middle==1.0", "top==1.0")
    # Every requirer's bound is kept: the runtime's copy must meet them all.
    assert archive.provided == ("cryptography>=2.0 (required by top 1.0)", "cryptography>=3.1 (required by middle 1.0)")
    assert {"top/__init__.py", "middle/__init__.py", "leaf/__init__.py"} <= set(archive.entries)
    assert not any(e.startswith("cryptography") for e in archive.entries)


def test_a_provided_compiled_dependency_need_not_be_installed_here(source: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "top", {"top/__init__.py": b""}, requires=("cryptography>=3",))
    (source / "requirements.txt").write_text("top\n")
    archive = build_archive(source, "python3.12", search_path=[str(site)])
    assert (archive.vendored, archive.provided) == (("top==1.0",), ("cryptography>=3 (required by top 1.0)",))


def test_a_pure_dependency_is_vendored_even_where_the_runtime_has_some_version(source: Path) -> None:
    # jmespath reaches the archive through aliyun-python-sdk-core's Requires-Dist,
    # not through function/requirements.txt.
    (source / "requirements.txt").write_text("aliyun-python-sdk-core==2.16.1\n")
    archive = build_archive(source, "python3.10")
    assert archive.vendored == ("aliyun-python-sdk-core==2.16.1", "jmespath==1.1.0")


def test_malformed_requires_dist_is_named(source: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "broken", {"broken/__init__.py": b""}, requires=("not a requirement!",))
    (source / "requirements.txt").write_text("broken\n")
    with pytest.raises(PackagingError, match=r"broken 1\.0: invalid Requires-Dist 'not a requirement!'"):
        build_archive(source, "python3.10", search_path=[str(site)])


def test_requires_python_must_admit_the_runtime(source: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "modern", {"modern/__init__.py": b""}, requires_python=">=3.10")
    (source / "requirements.txt").write_text("modern\n")
    assert build_archive(source, "python3.10", search_path=[str(site)]).vendored == ("modern==1.0",)
    with pytest.raises(PackagingError, match=r"modern 1\.0 requires Python >=3\.10, which runtime python3\.9"):
        build_archive(source, "python3.9", search_path=[str(site)])


def test_a_distribution_inside_a_zip_on_the_path_is_refused_by_name(source: Path, tmp_path: Path) -> None:
    """importlib.metadata finds distributions in a zip on the path too; its files are no
    filesystem paths to read and hash, so the build names it instead of failing inside."""
    site = tmp_path / "site"
    fake_distribution(site, "zipped", {"zipped/__init__.py": b""})
    zipped = tmp_path / "site.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted(site.rglob("*")):
            archive.write(path, path.relative_to(site).as_posix())
    (source / "requirements.txt").write_text("zipped\n")
    with pytest.raises(PackagingError, match=r"zipped 1\.0 is not installed in a directory"):
        build_archive(source, "python3.10", search_path=[str(zipped)])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_real_function_archive_is_byte_identical_when_built_twice(runtime: str) -> None:
    first, second = build_archive(REPO / "function", runtime), build_archive(REPO / "function", runtime)
    assert first.data == second.data and first.crc64 == second.crc64
    assert first.vendored == PURE_CLOSURE


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
    # Only what the runtime provides may be compiled; anything else pulled in is refused too.
    fake_distribution(site, "wrapper", {"wrapper/__init__.py": b""}, requires=("fastthing",))
    (source / "requirements.txt").write_text("wrapper==1.0\n")
    with pytest.raises(PackagingError, match=r"fastthing 1\.0 contains compiled code .* runtime python3\.12 does not"):
        build_archive(source, "python3.12", search_path=[str(site)])


def test_missing_distribution_is_named(source: Path, tmp_path: Path) -> None:
    (source / "requirements.txt").write_text("aliyun-python-sdk-fnf==1.8.3\n")
    with pytest.raises(PackagingError, match=r"'aliyun-python-sdk-fnf' \(required by function requirements\) is not installed"):
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


# What every FC Python runtime provides among the handler's dependencies: the
# compiled pyOpenSSL stack, nothing pure (docs/platform-facts.md "What each FC
# Python runtime provides"). Whatever else a runtime preinstalls is not relied on.
RUNTIME_PROVIDED = ["cryptography", "cffi", "pycparser"]
OLD_CRYPTO_PYTHON = "MNS_CALLBACK_OLD_CRYPTO_PYTHON"


def runtime_provided(target: Path) -> Path:
    """A directory holding only what the runtime provides: this environment's cryptography stack."""
    target.mkdir(parents=True)
    names = RUNTIME_PROVIDED + [p.name for p in SITE_PACKAGES.glob("_cffi_backend*")]
    for name in names:
        (target / name).symlink_to(SITE_PACKAGES / name)
    return target


def unzip(archive_data: bytes, target: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(archive_data)) as opened:
        opened.extractall(target)
    return target


def run_isolated(
    interpreter: str, paths: list[Path], body: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``body`` in a fresh ``-I -S`` interpreter whose only non-stdlib paths are ``paths``."""
    script = textwrap.dedent(
        f"""\
        import sys
        assert not any("site-packages" in p for p in sys.path), sys.path
        sys.path[:0] = {[str(p) for p in paths]!r}
        """
    ) + textwrap.dedent(body)
    return subprocess.run(
        [interpreter, "-I", "-S", "-c", script],
        capture_output=True, text=True, timeout=120, cwd=cwd, env=env, check=False,
    )


def import_handler_isolated(archive_data: bytes, tmp_path: Path, call: str) -> subprocess.CompletedProcess:
    """Unzip the archive and import ``index`` seeing only it and what the runtime provides."""
    code_dir = unzip(archive_data, tmp_path / "code")
    runtime_dir = runtime_provided(tmp_path / "runtime")
    return run_isolated(sys.executable, [code_dir, runtime_dir], f"import index\n{call}\n", tmp_path)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_unzipped_handler_runs_on_what_the_runtime_provides(source: Path, tmp_path: Path, runtime: str) -> None:
    archive = build_archive(source, runtime)
    result = import_handler_isolated(archive.data, tmp_path, "print(index.handler(b'{}', None))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"action": "ReportTaskSucceeded", "client": "AcsClient", "core": "core"}'


def test_without_vendoring_the_isolated_import_fails(source: Path, tmp_path: Path) -> None:
    # The control for the test above: the SDKs really come from the archive.
    (source / "requirements.txt").write_text("")
    archive = build_archive(source, "python3.10")
    result = import_handler_isolated(archive.data, tmp_path, "")
    assert result.returncode != 0
    assert "No module named 'aliyunsdkcore'" in result.stderr


def test_without_the_closure_s_jmespath_the_sdk_cannot_import(source: Path, tmp_path: Path) -> None:
    # jmespath is not in function/requirements.txt: it travels only because the
    # closure follows aliyun-python-sdk-core's Requires-Dist.
    archive = build_archive(source, "python3.10")
    kept = {}
    with zipfile.ZipFile(io.BytesIO(archive.data)) as opened:
        for name in opened.namelist():
            if not name.startswith("jmespath"):
                kept[name] = opened.read(name)
    result = import_handler_isolated(packaging.zip_bytes(kept), tmp_path, "")
    assert "No module named 'jmespath'" in result.stderr


REPORT = """\
import json
import index
with open("event.json", "rb") as file:
    answer = index.handler(file.read(), None)
sdk_signer_loaded_cryptography = "cryptography.hazmat.primitives.serialization" in sys.modules
chardet_ran = any(m.startswith("aliyunsdkcore.vendored.requests.packages.chardet.") for m in sys.modules)
import cryptography
from mns_callback import rsa_backend
origins = {m: sys.modules[m].__file__ for m in ("aliyunsdkcore", "aliyunsdkfnf", "jmespath", "cryptography")}
print(json.dumps({"answer": answer, "origins": origins, "cryptography": cryptography.__version__,
                  "sdk_loaded_cryptography": sdk_signer_loaded_cryptography, "chardet_ran": chardet_ran,
                  "rsa_check": "cryptography" if rsa_backend.native_backend() else "pure-python"}))
"""


def report_through_archive(
    archive: packaging.CodeArchive, tmp_path: Path, interpreter: str, provided_dir: Path
) -> tuple[dict, Report | None, Path]:
    """Hand one signed push to the unzipped archive's handler in ``interpreter``, reporting to a
    local FnF: the signature check and the SDK both run on what the runtime has."""
    code_dir = unzip(archive.data, tmp_path / "code")
    registry = TokenRegistry()
    with FnFEndpoint(registry) as fnf, CertServer() as cert:
        creds = fnf.issue_sts_credentials()
        token = registry.issue()
        message = Message(body=json.dumps({"messageBody": "hello world", "taskToken": token}))
        subscription = Subscription(endpoint="http://127.0.0.1/")
        path, headers, body = build_push(message, subscription, private_key=cert.identity.private_key,
                                         cert_url=cert.cert_url)
        event = build_event("POST", path, list(headers.items()), body,
                            request_id="req-1", account_id="1234567890123456", region="cn-hangzhou")
        (tmp_path / "event.json").write_bytes(event)
        env = {
            "FNF_ENDPOINT": fnf.url,
            "MNS_CERT_URL_PREFIXES": cert.url_prefix,
            **subscription.binding_environment(),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": creds.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": creds.access_key_secret,
            "ALIBABA_CLOUD_SECURITY_TOKEN": creds.security_token,
            "ALIBABA_CLOUD_REGION": "cn-hangzhou",
        }
        result = run_isolated(interpreter, [code_dir, provided_dir], REPORT, tmp_path, env)
        assert cert.fetches == 1, "the handler fetched the signing certificate and verified the push"
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), registry.report_of(token), code_dir


def assert_reported_from_the_archive(outcome: dict, report: Report | None, code_dir: Path) -> None:
    assert outcome["answer"]["statusCode"] == 200, outcome["answer"]
    assert report is not None and report.kind == "succeeded"
    for module in ("aliyunsdkcore", "aliyunsdkfnf", "jmespath"):
        assert outcome["origins"][module].startswith(str(code_dir)), outcome["origins"]
    # aliyun-python-sdk-core's signer imports cryptography: the runtime's copy served it.
    assert outcome["sdk_loaded_cryptography"] is True
    assert not outcome["origins"]["cryptography"].startswith(str(code_dir))
    # The SDK's vendored chardet is left unrun: reporting never guesses a text encoding.
    assert outcome["chardet_ran"] is False


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_real_function_archive_reports_a_push_on_what_the_runtime_provides(runtime: str, tmp_path: Path) -> None:
    archive = build_archive(REPO / "function", runtime)
    outcome, report, code_dir = report_through_archive(
        archive, tmp_path, sys.executable, runtime_provided(tmp_path / "runtime")
    )
    assert_reported_from_the_archive(outcome, report, code_dir)
    assert outcome["rsa_check"] == "cryptography"


def _site_of_cryptography(interpreter: str) -> Path:
    found = subprocess.run(
        [interpreter, "-I", "-c", "import cryptography, os; print(os.path.dirname(os.path.dirname(cryptography.__file__)))"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert found.returncode == 0, f"{OLD_CRYPTO_PYTHON}={interpreter} cannot import cryptography: {found.stderr}"
    return Path(found.stdout.strip())


@pytest.mark.skipif(
    not os.environ.get(OLD_CRYPTO_PYTHON),
    reason=f"{OLD_CRYPTO_PYTHON} names no interpreter with the oldest cryptography; `make old-crypto` builds one",
)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_real_function_reports_with_the_oldest_cryptography_the_sdk_accepts(runtime: str, tmp_path: Path) -> None:
    """The oldest cryptography a runtime may have: no runtime states its version, so
    the lower bound is aliyun-python-sdk-core's own ``Requires-Dist``."""
    archive = build_archive(REPO / "function", runtime)
    requirements = [Requirement(p.split(" (", 1)[0]) for p in archive.provided if p.startswith("cryptography")]
    floor = max(Version(s.version) for r in requirements for s in r.specifier if s.operator in (">=", "=="))
    interpreter = os.path.abspath(os.environ[OLD_CRYPTO_PYTHON])  # the tests run it from elsewhere
    outcome, report, code_dir = report_through_archive(archive, tmp_path, interpreter, _site_of_cryptography(interpreter))
    assert_reported_from_the_archive(outcome, report, code_dir)
    used = Version(outcome["cryptography"])
    assert used.release[:2] == floor.release[:2], f"cryptography {used} is not the oldest accepted, {floor}"
    # cryptography before 3.1 cannot build a key without a backend argument: the pure-Python check ran.
    assert outcome["rsa_check"] == "pure-python"


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
