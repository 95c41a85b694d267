"""The tree passes ruff (ruff.toml) and pyright (pyproject.toml's [tool.pyright]), and
the function stays runnable on FC's oldest Python runtime (3.9): ruff holds its syntax
there, vermin its use of the language and standard library, even where no such
interpreter is installed to run it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The folders [tool.pyright] includes: the library, the project and everything it runs.
TYPED_FOLDERS = ("mns_callback_flow", "infra", "function", "localcloud", "policy", "examples")


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


def _pyright(cwd: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """pyright over ``cwd``'s [tool.pyright] folders, against this interpreter's packages;
    returns the run and each error as ``path:line:col: message (rule)``."""
    # --outputjson also skips pyright-python's check for a newer release (a network call).
    ran = subprocess.run([sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable],
                         cwd=cwd, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"})
    try:
        report = json.loads(ran.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"pyright wrote no JSON report (exit {ran.returncode}): {ran.stdout}{ran.stderr}") from None
    errors = [
        f"{Path(d['file']).relative_to(cwd)}:{d['range']['start']['line'] + 1}:{d['range']['start']['character'] + 1}: "
        f"{d['message']} ({d.get('rule', '')})"
        for d in report["generalDiagnostics"] if d["severity"] == "error"
    ]
    return ran, errors


@pytest.mark.timeout(600)  # the whole tree takes pyright about half a minute
def test_pyright_finds_no_error():
    ran, errors = _pyright(ROOT)
    assert not errors, "\n".join(errors)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_pyright_checks_every_typed_folder_and_reports_an_unhandled_none(tmp_path):
    """A control: the same configuration reports an optional value used unchecked, in each folder."""
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for folder in (*TYPED_FOLDERS, "tests"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "sample.py").write_text(
            "def length(text: str | None) -> int:\n    return len(text)\n"
        )
    ran, errors = _pyright(tmp_path)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    reported = sorted(error.split("/", 1)[0] for error in errors)
    assert reported == sorted(TYPED_FOLDERS), "\n".join(errors)
    assert all("reportArgumentType" in error for error in errors), "\n".join(errors)
