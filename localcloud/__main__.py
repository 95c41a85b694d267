"""``python -m localcloud run --input JSON``: the pattern end to end on this machine;
``python -m localcloud serve``: the same stand-ins as a server for other clients.

``serve`` prints one JSON line (``fnfEndpoint``, ``mnsEndpoint``, ``region``,
``flowName``, ``topicName``, ``deadLetterQueueName``, ``triggerUrl``,
``accessKeyId``, ``accessKeySecret``: a key pair both endpoints accept), then
serves until SIGINT or SIGTERM and exits 0.

Exit codes: 0 every execution succeeded with its callback's output; 1 one did
not (it failed, its callback never arrived and it timed out, even where a catch
then ended it "Succeeded", or it still runs); 2 the run could not start (bad --input, bad config, a port in use,
a flow definition the local interpreter does not run), with one line on stderr.

Both render the stack offline first (``infra.synth.render``, what
``python -m infra.synth`` prints) and deploy that render
(``LocalStack.from_render``): the local run executes the code archive the
render ships, not ``function/`` from source.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from infra.synth import USER_ERRORS, render
from localcloud import fdl
from localcloud.deployment import DeploymentError
from localcloud.faults import FaultPlan
from localcloud.run import DEFAULT_TIME_SCALE, LocalStack, Outcome, run_many, run_one


class UsageError(Exception):
    """A problem with what the user asked for: reported in one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localcloud",
                                     description="Run the MNS callback pattern locally, end to end.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start executions of the stack's flow and print the outcome")
    run.add_argument("--input", required=True, help='execution input, a JSON object, e.g. '
                     '\'{"messageBody": "hello world"}\'')
    run.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml config to use")
    run.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value (a KEY without namespace is the project's)")
    run.add_argument("--executions", type=int, default=1, metavar="N", help="executions to run at once")
    run.add_argument("--fault-rate", type=float, default=0.0, metavar="F",
                     help="probability of a fault at each push and each report (0..1)")
    run.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the injected faults")
    run.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    run.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE, metavar="X",
                     help="local seconds per cloud second for timeouts and retries "
                     f"(default {DEFAULT_TIME_SCALE})")
    run.add_argument("--verbose", action="store_true",
                     help="show the function's and the SDK's log lines on stderr")
    run.add_argument("--fnf-port", type=int, default=0, metavar="P",
                     help="port of the FnF endpoint (default: chosen by the OS)")
    run.add_argument("--trigger-port", type=int, default=0, metavar="P",
                     help="port of the function's HTTP trigger (default: chosen by the OS)")
    run.add_argument("--mns-port", type=int, default=0, metavar="P",
                     help="port of the MNS endpoint (default: chosen by the OS)")
    run.add_argument("--outage", type=float, default=0.0, metavar="SECONDS",
                     help="the trigger answers 503 for this many cloud seconds from the start (time-scaled)")
    run.add_argument("--redrive", action="store_true",
                     help="after the outage, redrive the dead-letter queue (python -m infra.redrive's code) "
                     "through the local MNS endpoint")
    serve = commands.add_parser("serve", help="deploy the stack's pattern locally and serve its endpoints")
    serve.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml config to use")
    serve.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value (a KEY without namespace is the project's)")
    serve.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                       help="local seconds per cloud second for timeouts and retries (default 1: real time)")
    serve.add_argument("--verbose", action="store_true", help="show the function's and the SDK's log lines")
    for name, what in (("fnf", "FnF endpoint"), ("mns", "MNS endpoint"), ("trigger", "function's HTTP trigger")):
        serve.add_argument(f"--{name}-port", type=int, default=0, metavar="P",
                           help=f"port of the {what} (default: chosen by the OS)")
    return parser


# FnF StartExecution: the execution input is at most 32 KiB (docs/platform-facts.md "Limits").
MAX_INPUT_BYTES = 32 * 1024


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _input_text(raw: str) -> str:
    """The execution input as FnF would take it: a strict JSON object within 32 KiB."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except json.JSONDecodeError as err:
        raise UsageError(f"--input is not valid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise UsageError("--input is JSON nested too deeply") from None
    except ValueError as err:  # NaN / Infinity, or an integer past Python's digit limit
        raise UsageError(f"--input is not strict JSON ({str(err).split(':')[0]})") from None
    if not isinstance(value, dict):
        raise UsageError(f"--input must be a JSON object, got {type(value).__name__}")
    text = json.dumps(value, ensure_ascii=False)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_INPUT_BYTES:
        raise UsageError(f"--input is {size} bytes; FnF takes an execution input of at most {MAX_INPUT_BYTES}")
    return text


def _check_ports(args: argparse.Namespace) -> None:
    for name in ("fnf_port", "trigger_port", "mns_port"):
        port = getattr(args, name)
        if not 0 <= port <= 65535:
            raise UsageError(f"--{name.replace('_', '-')} must be within 0..65535, got {port}")
    if not 0.0 < args.time_scale <= 1.0:
        raise UsageError(f"--time-scale must be within (0, 1], got {args.time_scale}")


def _check_args(args: argparse.Namespace) -> None:
    if not 0.0 <= args.outage <= 31536000:
        raise UsageError(f"--outage must be within 0..31536000 cloud seconds, got {args.outage}")
    if args.executions < 1:
        raise UsageError(f"--executions must be at least 1, got {args.executions}")
    if not 0.0 <= args.fault_rate <= 1.0:
        raise UsageError(f"--fault-rate must be within 0..1, got {args.fault_rate}")
    _check_ports(args)


def _timeline(outcome: Outcome) -> list[str]:
    events = [(e["Time"], e["Type"], e["StepName"], e["EventDetail"]) for e in outcome.history]
    start = _epoch(events[0][0]) if events else 0.0
    d = outcome.description
    lines = [f"execution {d['Name']} of flow {d['FlowName']}: {outcome.status}"]
    rows = [(_epoch(t) - start, kind, step, _short(detail)) for t, kind, step, detail in events]
    for pushed in outcome.pushes:
        d = pushed.delivery
        rows.append((pushed.at - start, "MessagePushed", "",
                     f"{d.attempts} attempt(s): {', '.join(d.statuses)}"))
    for offset, kind, step, detail in sorted(rows, key=lambda r: r[0]):
        lines.append(f"  {offset * 1000:8.1f} ms  {kind:<20} {step:<16} {detail}".rstrip())
    return lines


def _epoch(iso: str) -> float:
    import calendar
    import time

    seconds, _, fraction = iso.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(seconds, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")


def _short(detail: str) -> str:
    value = json.loads(detail) if detail else {}
    if "messageBody" in value:  # the published message: show the input, hide most of the token
        body = dict(value["messageBody"])
        if isinstance(body.get("taskToken"), str):
            body["taskToken"] = body["taskToken"][:12] + "..."
        return "published " + json.dumps(body, ensure_ascii=False)
    text = json.dumps(value, ensure_ascii=False) if value else ""
    return text if len(text) <= 100 else text[:97] + "..."


def _run(args: argparse.Namespace) -> int:
    _check_args(args)
    input_text = _input_text(args.input)
    document = render(args.stack, args.config)
    faults = FaultPlan(args.seed, args.fault_rate) if args.fault_rate else None
    local = LocalStack.from_render(document, time_scale=args.time_scale, fnf_port=args.fnf_port,
                                   trigger_port=args.trigger_port, mns_port=args.mns_port, faults=faults,
                                   seed=args.seed, outage_seconds=args.outage)
    if args.redrive and local.dead_letter_queue_name is None:
        raise UsageError("--redrive needs the dead-letter queue, but the config sets deadLetterQueue: false")
    if args.redrive:
        _need_mns_sdk()
    with local as stack:
        if args.executions == 1 and faults is None and not args.outage and not args.redrive:
            outcome = run_one(stack, input_text)
            document: dict[str, Any] = {"status": outcome.status, "ending": outcome.ending,
                                        "output": outcome.output,
                                        "events": [e["Type"] for e in outcome.history]}
            if args.json:
                print(json.dumps(document, ensure_ascii=False))
            else:
                print(json.dumps(outcome.output, ensure_ascii=False))
                print("\n".join(_timeline(outcome)))
            return 0 if outcome.ending == "succeeded" else 1
        summary = run_many(stack, input_text, args.executions, redrive=args.redrive)
        summary.update(outage_seconds=args.outage)
        summary.update(seed=args.seed, fault_rate=args.fault_rate)
        if args.json:
            print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
        else:
            for key, value in summary.items():
                print(f"{key}: {value}")
        return 0 if summary["all_callbacks_arrived"] else 1


def _need_mns_sdk() -> None:
    try:
        import mns.account  # noqa: F401
    except ImportError:
        raise UsageError("--redrive uses aliyun-mns-sdk, which is not installed "
                         "(it is pinned in requirements-dev.txt)") from None


def serve_description(stack: LocalStack, access_key: tuple[str, str]) -> dict[str, str]:
    """What a client needs to reach the local stand-ins: the one JSON line ``serve`` prints."""
    return {
        "fnfEndpoint": stack.fnf.url,
        "mnsEndpoint": stack.mns.url,
        "region": stack.region,
        "flowName": stack.flow_name,
        "topicName": stack.topic_name,
        "deadLetterQueueName": stack.dead_letter_queue_name or "",
        "triggerUrl": stack.fc.url,
        "accessKeyId": access_key[0],
        "accessKeySecret": access_key[1],
    }


def _serve(args: argparse.Namespace) -> int:
    _check_ports(args)
    document = render(args.stack, args.config)
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with LocalStack.from_render(document, time_scale=args.time_scale, fnf_port=args.fnf_port,
                                    trigger_port=args.trigger_port, mns_port=args.mns_port) as stack:
            key = stack.fnf.issue_access_key()  # a long-term pair, accepted by both endpoints
            stack.mns.credentials[key.access_key_id] = key.access_key_secret
            print(json.dumps(serve_description(stack, (key.access_key_id, key.access_key_secret)),
                             sort_keys=True), flush=True)
            while not stopping.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _configure_logging(verbose: bool) -> None:
    """Function logs go to stderr with --verbose, else nowhere (in FC they go to SLS, not
    to the caller); either way stdout carries only the run's result."""
    handler: logging.Handler = logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()
    logging.basicConfig(level=logging.INFO if verbose else logging.CRITICAL, handlers=[handler],
                        format="%(name)s: %(message)s", force=True)
    # aliyunsdkcore attaches its own stderr handler to this logger at import.
    logging.getLogger("aliyunsdkcore").setLevel(logging.INFO if verbose else logging.CRITICAL)
    for name in ("aliyunsdkcore.http.http_response", "aliyunsdkcore.client"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return _serve(args) if args.command == "serve" else _run(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)  # the message names the config key or the source file
    except DeploymentError as err:
        print(f"error: the render cannot run locally: {err}", file=sys.stderr)
    except fdl.UnsupportedFlow as err:
        print(f"error: the flow definition cannot run locally: {err}", file=sys.stderr)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            print(f"error: a port is in use ({err.strerror}); choose another with --fnf-port / "
                  "--trigger-port / --mns-port or leave them at 0", file=sys.stderr)
        else:
            print(f"error: {err}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    from infra.command import run_command

    run_command(main)
