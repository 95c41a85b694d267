"""The tree passes ruff (ruff.toml): among its rules, the function's syntax is
held to python3.9, the oldest FC runtime it supports, even where no such
interpreter is installed to run it."""

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
