"""examples/typescript type-checks (``tsc --noEmit``) against a declaration generated from
the committed schema, the shape of the SDK ``pulumi package add`` generates.

The pinned npm packages (package-lock.json) are installed once into build/ and reused
while the lock file is unchanged. Without npm on the machine the check is skipped,
saying so.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from mns_callback_flow.provider import package_schema
from tests.ts_declarations import declarations, package_json

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "typescript"
WORK = ROOT / "build" / "typescript-example"
NPM, NODE = shutil.which("npm"), shutil.which("node")

pytestmark = pytest.mark.skipif(NPM is None or NODE is None, reason="npm and node are needed for tsc")


@pytest.fixture(scope="module")
def project() -> Path:
    """The example with its generated SDK and pinned node_modules, under build/."""
    lock = (EXAMPLE / "package-lock.json").read_bytes()
    stamp = WORK / ".lock-sha256"
    fresh = stamp.is_file() and stamp.read_text() == hashlib.sha256(lock).hexdigest()
    WORK.mkdir(parents=True, exist_ok=True)
    for name in ("index.ts", "package.json", "package-lock.json", "tsconfig.json"):
        shutil.copyfile(EXAMPLE / name, WORK / name)
    sdk = WORK / "sdks" / "mns-callback-flow"
    sdk.mkdir(parents=True, exist_ok=True)
    (sdk / "index.d.ts").write_text(declarations(package_schema()), encoding="utf-8")
    (sdk / "package.json").write_text(package_json(), encoding="utf-8")
    if not fresh or not (WORK / "node_modules" / ".bin" / "tsc").exists():
        done = subprocess.run([NPM, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=WORK,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        stamp.write_text(hashlib.sha256(lock).hexdigest())
    return WORK


def _tsc(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(where / "node_modules" / ".bin" / "tsc"), "-p", "."], cwd=where,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_typescript_example_type_checks_against_the_schema(project: Path) -> None:
    done = _tsc(project)
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.parametrize(("before", "after", "error"), [
    ("taskTimeoutSeconds: 600", "taskTimeoutSecs: 600", "taskTimeoutSecs"),
    ("maxAttempts: 2", 'maxAttempts: "2"', "not assignable to type 'number'"),
    ('workDir: "work"', 'workDir: ["work"]', "not assignable to type 'string'"),
])
def test_a_misspelt_or_mistyped_arg_fails_the_check(project: Path, before: str, after: str, error: str) -> None:
    original = (project / "index.ts").read_text(encoding="utf-8")
    assert before in original
    try:
        (project / "index.ts").write_text(original.replace(before, after), encoding="utf-8")
        done = _tsc(project)
        assert done.returncode != 0 and error in done.stdout, done.stdout
    finally:
        (project / "index.ts").write_text(original, encoding="utf-8")
