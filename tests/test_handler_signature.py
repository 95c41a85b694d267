"""The MNS signature check: string-to-sign, the real signed push, cert URLs, Date."""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest

from tests.handler_env import BOUND

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "function"))

from mns_callback import signature
from mns_callback.errors import CertificateUnavailable, SignatureRejected
from mns_callback.settings import settings_from_env

KAT = json.loads((ROOT / "tests" / "fixtures" / "mns_known_answer.json").read_text())
KAT_HEADERS = {k.lower(): v for k, v in KAT["headers"].items()}
KAT_NOW = parsedate_to_datetime(KAT["headers"]["Date"])
DEFAULT_PREFIXES = settings_from_env({**BOUND, "FC_REGION": "cn-hangzhou"}).cert_prefixes_for("cn-hangzhou")


class FakeFetch:
    """Serves the known certificate for its URL and counts fetches."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if url != KAT["certificate_url"]:
            raise CertificateUnavailable("unknown URL")
        return KAT["certificate_pem"].encode()


def test_string_to_sign_matches_the_real_push() -> None:
    assert signature.string_to_sign("POST", KAT["path"], KAT_HEADERS) == KAT["string_to_sign"]


def test_known_answer_verifies_at_its_own_time() -> None:
    fetch = FakeFetch()
    keys = signature.KeyCache(fetch)
    signature.verify_signed_headers("POST", KAT["path"], KAT_HEADERS, allowed_prefixes=DEFAULT_PREFIXES,
                          keys=keys, now=KAT_NOW + timedelta(minutes=3))
    signature.verify_signed_headers("POST", KAT["path"], KAT_HEADERS, allowed_prefixes=DEFAULT_PREFIXES,
                          keys=keys, now=KAT_NOW)
    assert fetch.urls == [KAT["certificate_url"]], "the certificate is fetched once and cached"


def test_known_answer_is_stale_today() -> None:
    with pytest.raises(SignatureRejected, match="Date is .* away from now"):
        signature.verify_signed_headers("POST", KAT["path"], KAT_HEADERS, allowed_prefixes=DEFAULT_PREFIXES,
                              keys=signature.KeyCache(FakeFetch()))


@pytest.mark.parametrize("change", [
    ("x-mns-message-id", "250EB49D5F8D737A391C93C6ED165397"),
    ("content-md5", "4CCBAD7AF2D23C2D00DDECCA59323A8D"),
    ("content-type", "application/json"),
    ("x-mns-topic-name", "another-topic"),
    ("x-mns-extra", "added"),
])
def test_tampered_known_answer_is_refused(change: tuple[str, str]) -> None:
    headers = dict(KAT_HEADERS)
    headers[change[0]] = change[1]
    with pytest.raises(SignatureRejected, match="does not match"):
        signature.verify_signed_headers("POST", KAT["path"], headers, allowed_prefixes=DEFAULT_PREFIXES,
                              keys=signature.KeyCache(FakeFetch()), now=KAT_NOW)


def test_other_path_or_method_is_refused() -> None:
    for method, path in (("POST", "/other"), ("PUT", KAT["path"])):
        with pytest.raises(SignatureRejected, match="does not match"):
            signature.verify_signed_headers(method, path, KAT_HEADERS, allowed_prefixes=DEFAULT_PREFIXES,
                                  keys=signature.KeyCache(FakeFetch()), now=KAT_NOW)


def _with_cert_url(url: str) -> dict[str, str]:
    headers = dict(KAT_HEADERS)
    headers["x-mns-signing-cert-url"] = base64.b64encode(url.encode()).decode()
    return headers


@pytest.mark.parametrize("url", [
    "http://mnstest.oss-cn-hangzhou.aliyuncs.com/x509_public_certificate.pem",
    "https://mnstest.oss-cn-hangzhou.aliyuncs.com.evil.example/x509_public_certificate.pem",
    "https://evil.example/https://mnstest.oss-cn-hangzhou.aliyuncs.com/",
    "https://127.0.0.1/x509_public_certificate.pem",
    "https://mns-cert.oss-cn-beijing.aliyuncs.com/x509_public_certificate.pem",
    "https://user@mnstest.oss-cn-hangzhou.aliyuncs.com/x509_public_certificate.pem",
    "file:///etc/passwd",
])
def test_certificate_url_outside_the_allowed_hosts_is_refused_before_any_fetch(url: str) -> None:
    fetch = FakeFetch()
    with pytest.raises(SignatureRejected):
        signature.verify_signed_headers("POST", KAT["path"], _with_cert_url(url), allowed_prefixes=DEFAULT_PREFIXES,
                              keys=signature.KeyCache(fetch), now=KAT_NOW)
    assert fetch.urls == []


def test_default_prefixes_are_exactly_the_documented_https_hosts() -> None:
    # SMQ "Verify HTTP push message signatures": mnstest.oss-cn-hangzhou or mns-cert.oss-cn-{region}.
    assert DEFAULT_PREFIXES == ("https://mnstest.oss-cn-hangzhou.aliyuncs.com/",
                                "https://mns-cert.oss-cn-hangzhou.aliyuncs.com/")
    assert settings_from_env({**BOUND}).cert_prefixes_for("cn-beijing") == (
        "https://mnstest.oss-cn-hangzhou.aliyuncs.com/", "https://mns-cert.oss-cn-beijing.aliyuncs.com/")
    assert settings_from_env({**BOUND}).cert_prefixes_for(None) == ("https://mnstest.oss-cn-hangzhou.aliyuncs.com/",)
    assert all(p.startswith("https://") for p in DEFAULT_PREFIXES)


@pytest.mark.parametrize("region", ["ap-southeast-1", "eu-central-1", "us-west-1"])
def test_outside_cn_regions_only_the_mnstest_prefix_is_documented(region: str) -> None:
    # The documented regional form is "mns-cert.oss-cn-{region}": it names no host for these ids.
    assert settings_from_env({**BOUND}).cert_prefixes_for(region) == ("https://mnstest.oss-cn-hangzhou.aliyuncs.com/",)
    fetch = FakeFetch()
    with pytest.raises(SignatureRejected):
        signature.verify_signed_headers("POST", KAT["path"],
                              _with_cert_url(f"https://mns-cert.oss-{region}.aliyuncs.com/x509_public_certificate.pem"),
                              allowed_prefixes=settings_from_env({**BOUND}).cert_prefixes_for(region),
                              keys=signature.KeyCache(fetch), now=KAT_NOW)
    assert fetch.urls == []


@pytest.mark.parametrize("headers, problem", [
    ({"authorization": ""}, "Authorization header is missing"),
    ({"authorization": "not base64!"}, "Authorization is not base64"),
    ({"authorization": "QUJD"}, "wrong length"),
    ({"x-mns-signing-cert-url": ""}, "x-mns-signing-cert-url header is missing"),
    ({"x-mns-signing-cert-url": "%%%"}, "not base64 of a URL"),
    ({"date": ""}, "Date header is missing"),
    ({"date": "yesterday"}, "not an HTTP date"),
])
def test_malformed_signature_headers_are_named(headers: dict[str, str], problem: str) -> None:
    merged = {**KAT_HEADERS, **headers}
    with pytest.raises(SignatureRejected, match=problem):
        signature.verify_signed_headers("POST", KAT["path"], merged, allowed_prefixes=DEFAULT_PREFIXES,
                              keys=signature.KeyCache(FakeFetch()), now=KAT_NOW)


def test_date_window_is_fifteen_minutes_both_ways() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    for delta, ok in ((timedelta(minutes=14), True), (timedelta(minutes=16), False),
                      (-timedelta(minutes=14), True), (-timedelta(minutes=16), False)):
        headers = {"date": format_datetime(now - delta, usegmt=True)}
        if ok:
            signature.check_date(headers, now)
        else:
            with pytest.raises(SignatureRejected):
                signature.check_date(headers, now)


def test_key_cache_is_bounded() -> None:
    pem = KAT["certificate_pem"].encode()
    fetched: list[str] = []
    cache = signature.KeyCache(lambda url: fetched.append(url) or pem, size=2)
    for url in ("a", "b", "a", "c", "b", "a"):
        cache.get(url)
    assert fetched == ["a", "b", "c", "b", "a"]


def test_fetch_refuses_non_certificates() -> None:
    with pytest.raises(CertificateUnavailable, match="not a PEM"):
        signature.load_public_key(b"<html>hello</html>")


def test_cryptography_is_not_imported_by_index() -> None:
    import subprocess
    code = ("import sys; sys.path.insert(0, 'function'); import index; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('cryptography', 'aliyunsdkcore', 'aliyunsdkfnf', 'ssl', 'http')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_failing_certificate_url_is_not_fetched_again_at_once() -> None:
    calls: list[str] = []

    def failing(url: str) -> bytes:
        calls.append(url)
        raise CertificateUnavailable("certificate URL answered HTTP 404")

    cache = signature.KeyCache(failing)
    for _ in range(3):
        with pytest.raises(CertificateUnavailable):
            cache.get("https://mnstest.oss-cn-hangzhou.aliyuncs.com/missing.pem")
    assert len(calls) == 1
