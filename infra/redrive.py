"""``python -m infra.redrive --stack NAME``: push the dead letters of a stack's subscription again.

A message whose pushes all failed (the handler was down longer than the
subscription's retries) waits in the dead-letter queue while its execution
still waits for the callback. With an operator's credentials, this receives
each dead letter with the official ``aliyun-mns-sdk``, publishes its original
message back to the topic (so MNS pushes it again, signed), and deletes it
from the queue only after the publish succeeded.

Safe to run twice at once: a received message is invisible to every other
receiver for the queue's visibility timeout, and before publishing, the
message's visibility is renewed with its receipt handle; a handle that is no
longer ours (another run received the message since) fails that renewal, so
the message is left to the run that holds it and never published twice.

Exit codes: 0 every dead letter was published (or there were none); 1 some
were skipped (not a callback message: left in the queue) or failed (left in
the queue, to be received again); 2 the run could not start, with one line on stderr.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from xml.etree import ElementTree

PUBLISHED, SKIPPED, FAILED = "published", "skipped", "failed"
# Seconds a received dead letter stays invisible to other receivers while it is
# republished (ChangeMessageVisibility takes 1-43200 s).
HOLD_SECONDS = 60
# A dead letter that is not a callback message is left visible again after this (the minimum).
SKIPPED_VISIBILITY_SECONDS = 1
_NOTIFICATION_NS = "{http://mns.aliyuncs.com/doc/v1/}"


@dataclass(frozen=True)
class Outcome:
    """What happened to one dead letter."""

    message_id: str
    result: str  # PUBLISHED, SKIPPED or FAILED
    detail: str = ""
    published_message_id: str = ""


# ---- pure: which bodies are callback messages ------------------------------------------


def _callback_json(text: str) -> str | None:
    """``text`` when it is the flow's message: a JSON object with a string ``taskToken``."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("taskToken"), str) and value["taskToken"]:
        return text
    return None


def _notification_message(text: str) -> str | None:
    """The ``Message`` of a JSON or XML notification wrapping the flow's message."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, dict) and isinstance(value.get("Message"), str):
        return value["Message"]
    if text.lstrip().startswith("<") and "<!DOCTYPE" not in text and "<!ENTITY" not in text:
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError:
            return None
        found = root.find(f"{_NOTIFICATION_NS}Message")
        found = found if found is not None else root.find("Message")
        return found.text if found is not None and found.text else None
    return None


def _base64_text(text: str) -> str | None:
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def original_message(body: str) -> str | None:
    """The flow's original message in a dead letter's body, or None if it holds none.

    What MNS writes into a subscription's dead-letter queue is not documented
    (docs/platform-facts.md), so every plausible form is accepted: the message
    itself, a JSON or XML notification around it, and either one base64-encoded
    (a queue client may base64 its bodies).
    """
    for candidate in (body, _base64_text(body)):
        if candidate is None:
            continue
        if _callback_json(candidate) is not None:
            return candidate
        inner = _notification_message(candidate)
        if inner is not None and _callback_json(inner) is not None:
            return inner
    return None


# ---- the redrive, over the SDK ----------------------------------------------------------


def _error_text(err: Exception) -> str:
    kind = getattr(err, "type", type(err).__name__)
    message = getattr(err, "message", str(err))
    return f"{kind}: {message}"


def _is_empty(err: Exception) -> bool:
    # ReceiveMessage on an empty queue: 404 MessageNotExist (MNS ReceiveMessage, doc-detail 35136).
    return getattr(err, "type", "") == "MessageNotExist"


def redrive(queue: Any, topic: Any, *, wait_seconds: int = 0, limit: int | None = None,
            report: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Redrives every dead letter ``queue`` holds into ``topic`` (``mns.queue.Queue`` and
    ``mns.topic.Topic`` of ``aliyun-mns-sdk``); one ``Outcome`` per message received.

    Stops when the queue has no visible message, when a message comes round a
    second time (one left earlier, visible again) or after ``limit`` messages.
    """
    from mns.mns_exception import MNSExceptionBase
    from mns.topic import TopicMessage

    queue.set_encoding(False)  # the body as stored; original_message decodes base64 itself
    outcomes: list[Outcome] = []
    seen: set[str] = set()

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if report:
            report(outcome)

    while limit is None or len(outcomes) < limit:
        try:
            received = queue.receive_message(wait_seconds)
        except MNSExceptionBase as err:
            if _is_empty(err):
                break
            raise
        if received.message_id in seen:
            break  # round the queue once: what is left was reported already
        seen.add(received.message_id)
        body = received.message_body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        message = original_message(body)
        if message is None:
            # Left for a person to look at, visible again at once for the next run (a
            # message that comes round again ends this run: it is in ``seen``).
            try:
                queue.change_message_visibility(received.receipt_handle, SKIPPED_VISIBILITY_SECONDS)
            except MNSExceptionBase:
                pass  # it becomes visible after the queue's own timeout instead
            record(Outcome(received.message_id, SKIPPED, "not a callback message (no taskToken): left in the queue"))
            continue
        try:
            # Renew our hold first: a handle another run has superseded fails here, before any publish.
            held = queue.change_message_visibility(received.receipt_handle, HOLD_SECONDS)
        except MNSExceptionBase as err:
            record(Outcome(received.message_id, FAILED, f"not held any more, left to its holder: {_error_text(err)}"))
            continue
        try:
            published = topic.publish_message(TopicMessage(message))
        except MNSExceptionBase as err:
            record(Outcome(received.message_id, FAILED, f"publish failed, left in the queue: {_error_text(err)}"))
            continue
        try:
            queue.delete_message(held.receipt_handle)
        except MNSExceptionBase as err:
            record(Outcome(received.message_id, PUBLISHED, f"published, but the delete failed (it may be "
                           f"received again; the handler answers a repeated token as already reported): "
                           f"{_error_text(err)}", published.message_id))
            continue
        record(Outcome(received.message_id, PUBLISHED, "", published.message_id))
    return outcomes


def summary(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts = {PUBLISHED: 0, SKIPPED: 0, FAILED: 0}
    for outcome in outcomes:
        counts[outcome.result] += 1
    return counts


# ---- the command -------------------------------------------------------------------------


class UsageError(Exception):
    """Reported in one line, exit code 2."""


def mns_endpoint(account_id: str, region: str) -> str:
    """The account's MNS endpoint, ``https://<account>.mns.<region>.aliyuncs.com`` (MNS
    "Regions and endpoints"; the API reference's ``$AccountId.mns.<Region>.aliyuncs.com``)."""
    return f"https://{account_id}.mns.{region}.aliyuncs.com"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.redrive",
        description="Publish each dead letter of the stack's subscription back to its topic, then delete it.")
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml config names the queue")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, as for python -m infra.synth")
    parser.add_argument("--endpoint", help="MNS endpoint URL (default: from --account-id and the region)")
    parser.add_argument("--account-id", default=os.environ.get("ALIBABA_CLOUD_ACCOUNT_ID", ""),
                        help="the stack's account id (the accountId output); default $ALIBABA_CLOUD_ACCOUNT_ID")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="redrive at most N messages")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    return parser


def _credentials() -> tuple[str, str, str]:
    key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
    secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
    if not key_id or not secret:
        raise UsageError("set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
                         "(and ALIBABA_CLOUD_SECURITY_TOKEN for STS credentials): the operator's own")
    return key_id, secret, os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN", "")


def main(argv: Sequence[str] | None = None) -> int:
    from infra.config import ConfigError, settings_from_mapping
    from infra.stack_config import StackConfigError, read_stack_config

    args = _parser().parse_args(argv)
    try:
        settings = settings_from_mapping(read_stack_config(args.stack, args.config), stack=args.stack)
        if settings.dead_letter_queue_name is None:
            raise UsageError(f"stack {args.stack!r} has deadLetterQueue: false: there is no queue to redrive")
        if args.limit is not None and args.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {args.limit}")
        endpoint = args.endpoint
        if not endpoint:
            if not args.account_id.isdigit():
                raise UsageError("give --account-id (the stack's accountId output) or --endpoint")
            endpoint = mns_endpoint(args.account_id, settings.region)
        key_id, secret, token = _credentials()
    except (UsageError, ConfigError, StackConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        from mns.account import Account
    except ImportError:
        print("error: aliyun-mns-sdk is not installed (it is pinned in requirements-dev.txt)", file=sys.stderr)
        return 2

    account = Account(endpoint, key_id, secret, token)
    queue = account.get_queue(settings.dead_letter_queue_name)
    topic = account.get_topic(settings.topic_name)

    def line(outcome: Outcome) -> None:
        if not args.json:
            detail = f" ({outcome.detail})" if outcome.detail else ""
            print(f"{outcome.message_id}: {outcome.result}{detail}", flush=True)

    try:
        outcomes = redrive(queue, topic, limit=args.limit, report=line)
    except Exception as err:  # noqa: BLE001 - the SDK's errors: one line, never a traceback
        print(f"error: receiving from {settings.dead_letter_queue_name}: {_error_text(err)}", file=sys.stderr)
        return 2
    counts = summary(outcomes)
    if args.json:
        print(json.dumps({"queue": settings.dead_letter_queue_name, "topic": settings.topic_name, **counts,
                          "messages": [asdict(o) for o in outcomes]}, sort_keys=True))
    else:
        print(f"{counts[PUBLISHED]} published, {counts[SKIPPED]} skipped, {counts[FAILED]} failed")
    return 0 if counts[SKIPPED] == counts[FAILED] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
