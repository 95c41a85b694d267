"""The SDK's vendored chardet stands deferred until used, then is the real module, on every
interpreter here (the FC runtimes' versions where installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import aliyunsdkcore
import pytest

ROOT = Path(__file__).resolve().parents[1]
SDK_SITE = Path(aliyunsdkcore.__file__).resolve().parents[1]

PROBE = """\
import json, sys
sys.path[:0] = [{function!r}, {site!r}]
from mns_callback import deferred_imports
deferred = {defer!r} and deferred_imports.defer_vendored_chardet()
from aliyunsdkcore.vendored.requests import compat, models
ran_at_import = any(m.startswith(deferred_imports.VENDORED_CHARDET + ".") for m in sys.modules)
stand_in = deferred_imports.is_deferred(sys.modules[deferred_imports.VENDORED_CHARDET])
response = models.Response()
response._content = "h\\u00e9llo w\\u00f6rld, \\u00e7a va? " .encode("latin-1") * 4
response.encoding = None
print(json.dumps({{"deferred": deferred, "ran_at_import": ran_at_import, "stand_in": stand_in,
                  "apparent": response.apparent_encoding, "text": response.text,
                  "detect": compat.chardet.detect(b"\\xe4\\xbd\\xa0\\xe5\\xa5\\xbd\\xe4\\xb8\\x96\\xe7\\x95\\x8c" * 8),
                  "version": compat.chardet.__version__, "is_package": hasattr(compat.chardet, "__path__"),
                  "same": compat.chardet is sys.modules[deferred_imports.VENDORED_CHARDET],
                  "still_stand_in": deferred_imports.is_deferred(compat.chardet)}}))
"""


def interpreters() -> list[str]:
    found = [sys.executable]
    for name in ("python3.9", "python3.10", "python3.12"):
        path = shutil.which(name)
        if path and subprocess.run([path, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            found.append(path)
    return found


def probe(interpreter: str, defer: bool) -> dict:
    script = textwrap.dedent(PROBE.format(function=str(ROOT / "function"), site=str(SDK_SITE), defer=defer))
    ran = subprocess.run([interpreter, "-I", "-S", "-B", "-c", script], capture_output=True, text=True,
                         timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


@pytest.mark.parametrize("interpreter", interpreters())
def test_chardet_waits_until_used_and_then_answers_as_the_real_one(interpreter: str) -> None:
    deferred, plain = probe(interpreter, True), probe(interpreter, False)
    assert deferred["deferred"] is True and deferred["stand_in"] is True
    assert deferred["ran_at_import"] is False, "importing requests ran chardet"
    assert plain["ran_at_import"] is True, "the control: without the stand-in, requests' import runs chardet"
    for key in ("apparent", "text", "detect", "version", "is_package", "same"):
        assert deferred[key] == plain[key], key
    assert deferred["still_stand_in"] is False


def test_nothing_is_deferred_once_chardet_is_imported_or_where_the_sdk_vendors_none(tmp_path: Path) -> None:
    def run(site: Path, first: str) -> list[str]:
        script = (f"import sys; sys.path[:0] = [{str(ROOT / 'function')!r}, {str(site)!r}]\n{first}\n"
                  "from mns_callback import deferred_imports\n"
                  "print(deferred_imports.defer_vendored_chardet(),\n"
                  "      deferred_imports.is_deferred(sys.modules.get(deferred_imports.VENDORED_CHARDET, sys)))\n")
        ran = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True,
                             check=False, timeout=120)
        assert ran.returncode == 0, ran.stderr
        return ran.stdout.split()

    assert run(SDK_SITE, "import aliyunsdkcore.vendored.requests") == ["False", "False"]
    (tmp_path / "aliyunsdkcore").mkdir()
    (tmp_path / "aliyunsdkcore" / "__init__.py").write_text("")
    assert run(tmp_path, "") == ["False", "False"]
    assert run(SDK_SITE, "") == ["True", "True"]
