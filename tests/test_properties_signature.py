"""Properties of the MNS signature check, over generated dates, headers and URLs.

The Date window is exactly 15 minutes both ways at any offset; the text to
sign does not depend on header order or the method's case; the Authorization
and certificate URL headers are read strictly (a character more is a refusal,
never a lenient decode). Checked against the real signed push in
``tests/fixtures/mns_known_answer.json``.
"""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "function"))

from mns_callback import signature
from mns_callback.errors import SignatureRejected

from tests.test_handler_signature import KAT, KAT_HEADERS, KAT_NOW
from tests.test_handler_signature import FakeFetch as Fetch

PROPERTY = settings(max_examples=100, derandomize=True, database=None, deadline=None)
PREFIXES = ("https://mnstest.oss-cn-hangzhou.aliyuncs.com/",)
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@PROPERTY
@given(offset=st.integers(-3 * signature.MAX_DATE_SKEW_SECONDS, 3 * signature.MAX_DATE_SKEW_SECONDS),
       zone=st.sampled_from(["GMT", "+0000", "-0000", "+0800", "-0530"]))
@example(offset=signature.MAX_DATE_SKEW_SECONDS, zone="GMT")
@example(offset=-signature.MAX_DATE_SKEW_SECONDS, zone="GMT")
@example(offset=signature.MAX_DATE_SKEW_SECONDS + 1, zone="GMT")
@example(offset=-signature.MAX_DATE_SKEW_SECONDS - 1, zone="-0000")
@example(offset=0, zone="-0000")  # RFC 5322 "unknown zone": read as UTC, not a naive datetime
def test_the_date_window_is_exactly_fifteen_minutes_both_ways(offset: int, zone: str) -> None:
    sent = NOW + timedelta(seconds=offset)
    if zone == "GMT":
        raw = format_datetime(sent, usegmt=True)
    else:
        sign = 1 if zone[0] == "+" else -1
        shift = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:])) * sign
        raw = format_datetime(sent.astimezone(UTC) + shift).rsplit(" ", 1)[0] + f" {zone}"
    if abs(offset) <= signature.MAX_DATE_SKEW_SECONDS:
        signature.check_date({"date": raw}, NOW)
    else:
        with pytest.raises(SignatureRejected, match="away from now"):
            signature.check_date({"date": raw}, NOW)


@PROPERTY
@given(order=st.permutations(sorted(KAT_HEADERS)), method=st.sampled_from(["POST", "post", "Post"]),
       extra=st.dictionaries(st.from_regex(r"[a-z-]{1,12}", fullmatch=True), st.text(max_size=8), max_size=3))
def test_the_text_to_sign_ignores_header_order_and_method_case(order: list, method: str, extra: dict) -> None:
    headers = {name: KAT_HEADERS[name] for name in order}
    assert signature.string_to_sign(method, KAT["path"], headers) == KAT["string_to_sign"]
    # Headers that are not x-mns-* (nor the four named ones) never change it.
    others = {k: v for k, v in extra.items()
              if not k.startswith("x-mns-") and k not in ("content-md5", "content-type", "date")}
    assert signature.string_to_sign(method, KAT["path"], {**headers, **others}) == KAT["string_to_sign"]


def test_a_lower_case_method_verifies_like_post() -> None:
    signature.verify_signed_headers("post", KAT["path"], KAT_HEADERS, allowed_prefixes=PREFIXES,
                          keys=signature.KeyCache(Fetch()), now=KAT_NOW)


@PROPERTY
@given(where=st.integers(0, len(KAT_HEADERS["authorization"])), junk=st.sampled_from(list("!*-_.~ \t%$")))
def test_an_authorization_with_a_foreign_character_is_not_base64(where: int, junk: str) -> None:
    raw = KAT_HEADERS["authorization"]
    headers = {**KAT_HEADERS, "authorization": raw[:where] + junk + raw[where:]}
    if headers["authorization"].strip() == raw:
        return  # leading or trailing blanks are only trimmed
    with pytest.raises(SignatureRejected, match="Authorization is not base64"):
        signature.decode_signature(headers)


@PROPERTY
@given(tail=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
       bad=st.sampled_from(["\\", " ", "\t", "\n", "\x00", "\x1f"]))
def test_a_certificate_url_with_a_backslash_or_blank_is_refused_before_any_fetch(tail: str, bad: str) -> None:
    url = PREFIXES[0] + tail[: len(tail) // 2] + bad + tail[len(tail) // 2:]
    headers = {**KAT_HEADERS, "x-mns-signing-cert-url": base64.b64encode(url.encode()).decode()}
    fetch = Fetch()
    with pytest.raises(SignatureRejected, match="not a plain URL"):
        signature.verify_signed_headers("POST", KAT["path"], headers, allowed_prefixes=PREFIXES,
                              keys=signature.KeyCache(fetch), now=KAT_NOW)
    assert fetch.urls == []


@PROPERTY
@given(method=st.sampled_from(["POST", "PUT"]), header=st.sampled_from(sorted(KAT_HEADERS)),
       suffix=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=4), flip=st.integers(0, 511))
def test_the_real_push_altered_gets_the_same_verdict_from_cryptography_and_pure_python(
        method: str, header: str, suffix: str, flip: int) -> None:
    """The signed text or the signature altered: cryptography's check and the pure-Python one agree."""
    from mns_callback import rsa_backend, rsa_verify

    key = signature.load_public_key(KAT["certificate_pem"].encode())
    assert key.native is not None, "the handler's cached key does not use cryptography's check"
    headers = {**KAT_HEADERS, header: KAT_HEADERS[header] + suffix}
    text = signature.string_to_sign(method, KAT["path"], headers).encode()
    signed = bytearray(base64.b64decode(KAT_HEADERS["authorization"]))
    if flip < 8 * len(signed):
        signed[flip // 8] ^= 1 << (flip % 8)
    verdict = rsa_backend.verify(key, text, bytes(signed))
    assert verdict is rsa_verify.verify_sha1(key.numbers, text, bytes(signed))
    assert verdict is (method == "POST" and (suffix == "" or header == "authorization") and flip >= 8 * len(signed))


def test_the_certificate_is_read_once_per_cached_url_not_per_push(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[bytes] = []
    read = signature.public_key_of_certificate
    monkeypatch.setattr(signature, "public_key_of_certificate", lambda pem: (reads.append(pem), read(pem))[1])
    keys = signature.KeyCache(Fetch())
    for _ in range(5):
        signature.verify_signed_headers("POST", KAT["path"], KAT_HEADERS, allowed_prefixes=PREFIXES,
                                        keys=keys, now=KAT_NOW)
    assert len(reads) == 1
    assert keys.get(KAT["certificate_url"]).native is not None
