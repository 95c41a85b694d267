"""The stack outputs are a contract: README.md's "Stack outputs" table names them exactly.

Other projects read them with ``StackReference.require_output``; renaming or
removing one breaks them at their next ``pulumi up``, so it must show in the
README (and in review) first.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def readme_outputs(text: str) -> list[str]:
    """Names in the first column of the table under the "## Stack outputs" heading."""
    match = re.search(r"^## Stack outputs\s*$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if not match:
        raise AssertionError("README.md has no '## Stack outputs' section")
    names = re.findall(r"^\|\s*`([^`]+)`\s*\|", match.group(1), re.MULTILINE)
    if not names:
        raise AssertionError("README.md's 'Stack outputs' section has no table rows like | `name` | ... |")
    return names


def contract_problems(exported: list[str], documented: list[str]) -> list[str]:
    """What differs, each naming the output and where it is missing."""
    problems = [f"output {n!r} is exported by the stack but missing from README.md's 'Stack outputs' table"
                for n in exported if n not in documented]
    problems += [f"output {n!r} is in README.md's 'Stack outputs' table but the stack does not export it"
                 for n in documented if n not in exported]
    problems += [f"output {n!r} is listed twice in README.md's 'Stack outputs' table"
                 for n in sorted({n for n in documented if documented.count(n) > 1})]
    return problems


def test_rendered_outputs_equal_the_readme_table():
    from infra.synth import render

    exported = sorted(render("dev")["outputs"])
    problems = contract_problems(exported, readme_outputs(README.read_text(encoding="utf-8")))
    assert not problems, "\n".join(problems)


def test_consumer_requires_only_documented_outputs():
    tree = ast.parse((ROOT / "examples" / "consumer" / "__main__.py").read_text(encoding="utf-8"))
    required = [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("require_output", "get_output")
        and node.args and isinstance(node.args[0], ast.Constant)
    ]
    assert sorted(required) == ["accountId", "flowName", "region"]
    documented = readme_outputs(README.read_text(encoding="utf-8"))
    missing = [n for n in required if n not in documented]
    assert not missing, f"examples/consumer reads outputs {missing} that README.md's table does not promise"


def test_a_renamed_output_is_reported_on_both_sides():
    text = README.read_text(encoding="utf-8")
    documented = readme_outputs(text)
    renamed = readme_outputs(text.replace("| `flowName` |", "| `workflowName` |"))
    assert contract_problems(documented, renamed) == [
        "output 'flowName' is exported by the stack but missing from README.md's 'Stack outputs' table",
        "output 'workflowName' is in README.md's 'Stack outputs' table but the stack does not export it",
    ]
    removed = [n for n in documented if n != "triggerUrl"]
    assert contract_problems(removed, documented) == [
        "output 'triggerUrl' is in README.md's 'Stack outputs' table but the stack does not export it"]


def test_readme_without_the_section_is_an_error():
    with pytest.raises(AssertionError, match="no '## Stack outputs' section"):
        readme_outputs("# title\n\n## Other\n")
