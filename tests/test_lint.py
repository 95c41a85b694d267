"""The tree passes ruff (ruff.toml), and the function stays runnable on FC's oldest
Python runtime (3.9): ruff holds its syntax there, vermin its use of the language
and standard library, even where no such interpreter is installed to run it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    ran = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_function_syntax_is_checked_against_python39(tmp_path):
    """A control: the same check refuses 3.10 syntax in the function folder."""
    (tmp_path / "function").mkdir()
    (tmp_path / "ruff.toml").write_text((ROOT / "ruff.toml").read_text())
    (tmp_path / "function" / "index.py").write_text("match 1:\n    case _:\n        pass\n")
    ran = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert ran.returncode != 0 and "match" in ran.stdout, ran.stdout + ran.stderr


def _vermin(*paths: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    vermin = Path(sys.executable).parent / "vermin"  # the package has no __main__
    return subprocess.run([str(vermin), "-t=3.9-", "--violations", "--no-tips", *paths],
                          cwd=cwd, capture_output=True, text=True, check=False)


def test_function_uses_no_language_or_library_feature_newer_than_python39():
    """Syntax alone is not enough: ``datetime.UTC`` (3.11) parses on 3.9 and fails there at run time."""
    ran = _vermin("function")
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_vermin_catches_a_library_feature_newer_than_python39(tmp_path):
    (tmp_path / "index.py").write_text("import datetime\nNOW = datetime.datetime.now(datetime.UTC)\n")
    ran = _vermin("index.py", cwd=tmp_path)
    assert ran.returncode != 0 and "datetime.UTC" in ran.stdout, ran.stdout + ran.stderr
