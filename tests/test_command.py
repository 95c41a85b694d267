"""``infra.command.run_command``: a one-shot command's status and output, with its heap frozen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(body: str) -> subprocess.CompletedProcess:
    program = "import gc\nfrom infra.command import run_command\n" + body
    return subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=60)


def test_the_command_exits_with_its_status_and_runs_with_the_imports_frozen() -> None:
    done = _run("def main():\n    print('frozen before main:', gc.get_freeze_count() > 0)\n    return 3\n"
                "run_command(main)\nprint('not reached')\n")
    assert done.returncode == 3
    assert done.stdout == "frozen before main: True\n"


def test_an_error_in_the_command_is_raised_as_usual() -> None:
    done = _run("def main():\n    raise LookupError('boom')\nrun_command(main)\n")
    assert done.returncode == 1
    assert "LookupError: boom" in done.stderr


def test_objects_made_by_the_command_are_still_collected_while_it_runs() -> None:
    # The freeze covers what existed before main; cycles main makes and drops are collected.
    done = _run("import weakref\nclass Node: pass\n"
                "def main():\n    node = Node(); node.me = node; ref = weakref.ref(node); del node\n"
                "    gc.collect()\n    print('collected:', ref() is None)\n    return 0\n"
                "run_command(main)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "collected: True\n"
