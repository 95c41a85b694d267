"""Callback handler: cold-start import cost and per-push latency on loopback.

* ``import_index_ms``: importing ``index`` in a fresh interpreter (what a cold
  start pays before the first push), median of 7; plus which heavy modules that
  import pulls in (none: the SDK and ``cryptography`` load on first use).
* ``first_push_extra_import_ms``: what the first verified, reported push adds
  (signature check + FnF SDK + cryptography).
* ``console_sample_import_ms``: the console sample's module-level imports, for
  comparison (it loads the SDK before it can answer anything).
* ``push_latency_fc3`` / ``_fc2``: signed pushes through the FC 3.0 and FC 2.0
  adapters over real HTTP, reported to the local FnF endpoint (p50 / p95 / max;
  ``first_ms`` includes the SDK import and certificate fetch for FC 3.0, which
  runs first). On a kept-alive connection the local endpoint's answers meet
  TCP delayed ACK (about 40 ms on Linux), which dominates these numbers.
* ``core_latency_without_fnf``: the handler's own work per push (signature
  check, parsing, decision, log line) with FnF's answer taken as instant.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = ROOT / "function"
HEAVY = ("cryptography", "aliyunsdkcore", "aliyunsdkfnf", "ssl", "http.client")


_IMPORT_PROBE = """
import json, sys, time
sys.path.insert(0, {function!r})
t0 = time.perf_counter()
{statement}
t1 = time.perf_counter()
heavy = sorted(m for m in sys.modules if m in {heavy!r})
t2 = time.perf_counter()
{then}
t3 = time.perf_counter()
print(json.dumps({{"first": (t1 - t0) * 1000, "then": (t3 - t2) * 1000, "heavy": heavy}}))
"""


def _import_probe(statement: str, then: str = "pass") -> dict:
    """Milliseconds to run ``statement`` (imports) in a fresh interpreter, then ``then``."""
    code = _IMPORT_PROBE.format(function=str(FUNCTION), statement=statement, heavy=HEAVY, then=then)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def _median_probe(statement: str, then: str = "pass", runs: int = 7) -> dict:
    results = [_import_probe(statement, then) for _ in range(runs)]
    return {"first_ms": round(statistics.median(r["first"] for r in results), 1),
            "then_ms": round(statistics.median(r["then"] for r in results), 1),
            "heavy": results[0]["heavy"]}


def _push_latencies(fc_version: str, pushes: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from localcloud.fc_runtime import FcRuntime
    from localcloud.fnf_api import FnFEndpoint, TokenRegistry
    from localcloud.mns_push import CertServer, Message, Subscription, build_push, push

    registry = TokenRegistry()
    with FnFEndpoint(registry) as fnf, CertServer() as cert:
        env = {"FNF_ENDPOINT": fnf.url, "MNS_CERT_URL_PREFIXES": cert.url_prefix,
               **Subscription("http://127.0.0.1/").binding_environment()}
        with FcRuntime(source_dir=FUNCTION, fc_version=fc_version, credentials=fnf.issue_sts_credentials(),
                       environment=env) as fc:
            sub = Subscription(endpoint=fc.url, notify_format="JSON")
            latencies = []
            first = None
            for i in range(pushes + 1):
                token = registry.issue()
                message = Message(body=json.dumps({"messageBody": "hello world", "taskToken": token}))
                path, headers, body = build_push(message, sub, private_key=cert.identity.private_key,
                                                 cert_url=cert.cert_url)
                started = time.perf_counter()
                status = push(fc.url, path, headers, body)
                elapsed = (time.perf_counter() - started) * 1000
                if status != 200:
                    raise RuntimeError(f"push answered {status}")
                if i == 0:
                    first = elapsed  # cold: loads the SDK, fetches the certificate
                else:
                    latencies.append(elapsed)
            if len(registry.reports) != pushes + 1:
                raise RuntimeError("not every push was reported exactly once")
    latencies.sort()
    return {"first_ms": round(first or 0.0, 1),
            "p50_ms": round(statistics.median(latencies), 1),
            "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
            "max_ms": round(latencies[-1], 1), "pushes": pushes}


def _core_latency(pushes: int) -> dict[str, float]:
    """The handler's own work per push (signature check with a cached key,
    parsing, decision, log line), with FnF's answer taken as instant."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(FUNCTION))
    from mns_callback import app
    from mns_callback.credentials import Credentials
    from mns_callback.decision import Outcome
    from mns_callback.report import ReportResult
    from mns_callback.settings import settings_from_env

    from localcloud.mns_push import CertServer, Message, Subscription, build_push

    class InstantFnF:
        def __init__(self, *_: object) -> None:
            pass

        def succeed(self, *_: object) -> ReportResult:
            return ReportResult(Outcome.REPORTED, 1)

    with CertServer() as cert:
        settings = settings_from_env({**Subscription("http://127.0.0.1/").binding_environment(), "MNS_CERT_URL_PREFIXES": cert.url_prefix, "FC_REGION": "cn-hangzhou"})
        invocation = app.Invocation(Credentials("id", "secret", "token"), "cn-hangzhou")
        sub = Subscription(endpoint="http://127.0.0.1:9/", notify_format="JSON")
        times = []
        for _ in range(pushes):
            message = Message(body=json.dumps({"messageBody": "hello world", "taskToken": "dG9rZW4" * 8}))
            path, headers, body = build_push(message, sub, private_key=cert.identity.private_key,
                                             cert_url=cert.cert_url)
            request = app.HttpRequest("POST", path, app.lower_headers(headers), body)
            started = time.perf_counter()
            answer = app.handle(request, invocation, settings, reporter_factory=InstantFnF)
            times.append((time.perf_counter() - started) * 1000)
            if answer.status != 200:
                raise RuntimeError(f"core answered {answer.status}: {answer.body!r}")
    times = times[1:]  # the first fetches the certificate
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2), "pushes": len(times)}


def main() -> dict:
    import logging
    # The handler logs one line per push; keep them out of the bench's JSON.
    logging.getLogger("mns_callback").addHandler(logging.NullHandler())
    ours = _median_probe("import index",
                         "import mns_callback.signature, mns_callback.report, aliyunsdkcore.client, "
                         "aliyunsdkfnf.request.v20190315.ReportTaskSucceededRequest, cryptography.x509")
    # What the console sample imports before its first line runs.
    sample = _median_probe("import json; from aliyunsdkcore.client import AcsClient; "
                           "from aliyunsdkcore.auth.credentials import StsTokenCredential; "
                           "from aliyunsdkfnf.request.v20190315.ReportTaskSucceededRequest "
                           "import ReportTaskSucceededRequest")
    return {
        "import_index_ms": ours["first_ms"],
        "import_index_pulls_heavy_modules": ours["heavy"],
        "first_push_extra_import_ms": ours["then_ms"],
        "console_sample_import_ms": sample["first_ms"],
        "core_latency_without_fnf": _core_latency(201),
        "push_latency_fc3": _push_latencies("3.0", 100),
        "push_latency_fc2": _push_latencies("2.0", 100),
        "mns_window_ms": 5000,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2, sort_keys=True))
