"""The pure-Python RSA check against ``cryptography`` as the reference: same
verdict for genuine, altered and foreign signatures, and certificates read the
way OpenSSL reads them."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "function"))

from mns_callback import rsa_verify

KAT = json.loads((ROOT / "tests" / "fixtures" / "mns_known_answer.json").read_text())


def certificate(key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notify")])
    now = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(12345).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


KEYS = {bits: rsa.generate_private_key(public_exponent=65537, key_size=bits) for bits in (1024, 2048)}
KEYS[3] = rsa.generate_private_key(public_exponent=3, key_size=1024)


def reference_verifies(key: rsa.RSAPrivateKey, message: bytes, signature: bytes) -> bool:
    try:
        key.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True


def test_the_real_mns_certificate_and_push_verify() -> None:
    key = rsa_verify.public_key_of_certificate(KAT["certificate_pem"].encode())
    assert (key.modulus.bit_length(), key.exponent) == (512, 65537)
    signature = base64.b64decode(KAT["headers"]["Authorization"])
    assert rsa_verify.verify_sha1(key, KAT["string_to_sign"].encode(), signature)
    assert not rsa_verify.verify_sha1(key, KAT["string_to_sign"].encode() + b"\n", signature)


@pytest.mark.parametrize("which", sorted(KEYS))
def test_the_key_read_from_a_certificate_is_the_one_openssl_reads(which: int) -> None:
    key = KEYS[which]
    numbers = key.public_key().public_numbers()
    read = rsa_verify.public_key_of_certificate(certificate(key))
    assert (read.modulus, read.exponent) == (numbers.n, numbers.e)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(which=st.sampled_from(sorted(KEYS)), message=st.binary(max_size=512),
       flip=st.one_of(st.none(), st.integers(min_value=0)))
def test_the_verdict_agrees_with_cryptography(which: int, message: bytes, flip: int | None) -> None:
    key = KEYS[which]
    public = rsa_verify.public_key_of_certificate(certificate(key))
    signature = bytearray(key.sign(message, padding.PKCS1v15(), hashes.SHA1()))
    if flip is not None:
        signature[flip % len(signature)] ^= 1 << (flip % 8)
    signature = bytes(signature)
    assert rsa_verify.verify_sha1(public, message, signature) is reference_verifies(key, message, signature)


def test_a_signature_with_another_hash_or_key_is_refused() -> None:
    key = KEYS[2048]
    public = rsa_verify.public_key_of_certificate(certificate(key))
    message = b"POST\n...\n/notifications"
    assert not rsa_verify.verify_sha1(public, message, key.sign(message, padding.PKCS1v15(), hashes.SHA256()))
    assert not rsa_verify.verify_sha1(public, message, KEYS[1024].sign(message, padding.PKCS1v15(), hashes.SHA1()))
    assert not rsa_verify.verify_sha1(public, message, b"\x00" * 256)
    assert not rsa_verify.verify_sha1(public, message, (public.modulus + 1).to_bytes(257, "big")[1:])


@pytest.mark.parametrize("pem, words", [
    (b"not a certificate", "not a PEM certificate"),
    (b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "not base64"),
    (b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", "truncated"),
    (b"-----BEGIN CERTIFICATE-----\nMAIBAA==\n-----END CERTIFICATE-----\n", "expected tbsCertificate"),
    (b"-----BEGIN CERTIFICATE-----\nMIAA\n-----END CERTIFICATE-----\n", "DER length"),
])
def test_malformed_certificates_are_refused_by_name(pem: bytes, words: str) -> None:
    with pytest.raises(rsa_verify.CertificateError, match=words):
        rsa_verify.public_key_of_certificate(pem)


def test_a_certificate_without_an_rsa_key_is_refused() -> None:
    with pytest.raises(rsa_verify.CertificateError, match="no RSA key"):
        rsa_verify.public_key_of_certificate(certificate(ec.generate_private_key(ec.SECP256R1())))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=600))
def test_any_bytes_as_a_certificate_give_a_key_or_a_certificate_error(der: bytes) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"
    try:
        rsa_verify.public_key_of_certificate(pem)
    except rsa_verify.CertificateError:
        pass


# --- cryptography's check (rsa_backend) held to the pure-Python one -------------------------

from mns_callback import rsa_backend, signature


def both_verdicts(numbers: rsa_verify.RsaPublicKey, message: bytes, signed: bytes) -> tuple[bool, bool]:
    """(cryptography's verdict, the pure-Python verdict); the first must really come from cryptography."""
    key = rsa_backend.verifying_key(numbers)
    assert key.native is not None, "cryptography's path is not in use for this key"
    return rsa_backend.verify(key, message, signed), rsa_verify.verify_sha1(numbers, message, signed)


def test_cryptography_passes_its_self_test_here() -> None:
    assert rsa_backend.native_backend() is not None
    assert rsa_verify.verify_sha1(rsa_backend.SELF_TEST_KEY, rsa_backend.SELF_TEST_MESSAGE,
                                  rsa_backend.SELF_TEST_SIGNATURE)
    # The known answer's key is as small as MNS's own certificate's.
    real = rsa_verify.public_key_of_certificate(KAT["certificate_pem"].encode())
    assert rsa_backend.SELF_TEST_KEY.modulus.bit_length() == real.modulus.bit_length() == 512


def test_the_real_mns_certificate_verifies_the_same_on_both_paths() -> None:
    numbers = rsa_verify.public_key_of_certificate(KAT["certificate_pem"].encode())
    signed = base64.b64decode(KAT["headers"]["Authorization"])
    text = KAT["string_to_sign"].encode()
    assert both_verdicts(numbers, text, signed) == (True, True)
    assert both_verdicts(numbers, text + b"\n", signed) == (False, False)
    assert both_verdicts(numbers, text, signed[:-1] + bytes([signed[-1] ^ 0x80])) == (False, False)


SIGNATURE_KINDS = ("genuine", "flipped", "foreign key", "sha256", "truncated", "padded", "random", "modulus")


@settings(max_examples=150, deadline=None, derandomize=True)
@given(which=st.sampled_from(sorted(KEYS)), message=st.binary(max_size=300),
       kind=st.sampled_from(SIGNATURE_KINDS), where=st.integers(min_value=0), noise=st.binary(min_size=1, max_size=300))
def test_both_paths_give_the_same_verdict(which: int, message: bytes, kind: str, where: int, noise: bytes) -> None:
    key = KEYS[which]
    numbers = rsa_verify.public_key_of_certificate(certificate(key))
    genuine = key.sign(message, padding.PKCS1v15(), hashes.SHA1())
    signed = {
        "genuine": genuine,
        "flipped": bytes(b ^ (1 << (where % 8)) if i == where % len(genuine) else b for i, b in enumerate(genuine)),
        "foreign key": KEYS[1024 if which != 1024 else 2048].sign(message, padding.PKCS1v15(), hashes.SHA1()),
        "sha256": key.sign(message, padding.PKCS1v15(), hashes.SHA256()),
        "truncated": genuine[1:],
        "padded": b"\x00" + genuine,
        "random": (noise * (len(genuine) // len(noise) + 1))[:len(genuine)],
        "modulus": numbers.modulus.to_bytes(len(genuine), "big"),
    }[kind]
    native, pure = both_verdicts(numbers, message, signed)
    assert native is pure is reference_verifies(key, message, signed)
    assert pure is (kind == "genuine")


def test_a_signature_with_a_leading_zero_byte_is_judged_alike_whole_or_stripped() -> None:
    """Only a signature of the modulus' length counts (RFC 8017 8.2.2 step 1), on both paths."""
    key = KEYS[1024]
    numbers = key.public_key().public_numbers()
    public = rsa_verify.RsaPublicKey(numbers.n, numbers.e)
    for counter in range(20000):
        message = b"push %d" % counter
        signed = key.sign(message, padding.PKCS1v15(), hashes.SHA1())
        if signed[0] == 0:
            break
    else:
        pytest.fail("no signature with a leading zero byte found")
    assert both_verdicts(public, message, signed) == (True, True)
    assert both_verdicts(public, message, signed[1:]) == (False, False)


def test_a_key_cryptography_will_not_build_is_checked_in_pure_python() -> None:
    modulus = KEYS[1024].public_key().public_numbers().n
    odd_exponent_past_the_modulus = rsa_verify.RsaPublicKey(modulus, modulus + 2)  # the DER reader allows it
    key = rsa_backend.verifying_key(odd_exponent_past_the_modulus)
    assert key.native is None
    signed = KEYS[1024].sign(b"m", padding.PKCS1v15(), hashes.SHA1())
    assert rsa_backend.verify(key, b"m", signed) is rsa_verify.verify_sha1(odd_exponent_past_the_modulus, b"m", signed)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(signed=st.binary(min_size=128, max_size=128))
def test_an_even_modulus_gives_the_same_verdict_on_both_paths(signed: bytes) -> None:
    even = rsa_verify.RsaPublicKey(KEYS[1024].public_key().public_numbers().n + 1, 65537)
    key = rsa_backend.verifying_key(even)
    assert rsa_backend.verify(key, b"m", signed) is rsa_verify.verify_sha1(even, b"m", signed) is False


def test_a_cryptography_that_fails_the_self_test_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rsa_backend, "_probed", False)
    monkeypatch.setattr(rsa_backend, "_native", None)
    monkeypatch.setattr(rsa_backend._Native, "passes_self_test", lambda self: False)
    numbers = rsa_verify.public_key_of_certificate(KAT["certificate_pem"].encode())
    key = rsa_backend.verifying_key(numbers)
    assert key.native is None
    assert rsa_backend.verify(key, KAT["string_to_sign"].encode(), base64.b64decode(KAT["headers"]["Authorization"]))


def test_a_cryptography_that_refuses_sha1_fails_the_self_test(monkeypatch: pytest.MonkeyPatch) -> None:
    native = rsa_backend._Native()
    assert native.passes_self_test()
    monkeypatch.setattr(native, "verify", lambda *_: False)  # what a policy without SHA-1 signatures answers
    assert not native.passes_self_test()
    monkeypatch.setattr(native, "verify", lambda *_: True)  # nor may a check that accepts everything pass
    assert not native.passes_self_test()


def test_an_error_while_verifying_falls_back_to_the_pure_python_verdict() -> None:
    numbers = rsa_verify.public_key_of_certificate(KAT["certificate_pem"].encode())

    class Broken:
        def verify(self, *_: object) -> None:
            raise ValueError("unsupported here")

    key = rsa_backend.VerifyingKey(numbers, Broken())
    assert rsa_backend.verify(key, KAT["string_to_sign"].encode(), base64.b64decode(KAT["headers"]["Authorization"]))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(which=st.sampled_from(sorted(KEYS)), where=st.integers(min_value=0), value=st.integers(0, 255),
       message=st.binary(max_size=64))
def test_an_altered_certificate_gives_the_same_verdict_on_both_paths(which: int, where: int, value: int,
                                                                   message: bytes) -> None:
    """Garbage certificates: one byte of a real one replaced. Both paths read it with the one
    strict reader, so either both refuse it or both judge the genuine signature alike."""
    key = KEYS[which]
    der = bytearray(rsa_verify.pem_to_der(certificate(key)))
    der[where % len(der)] = value
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(bytes(der)) + b"-----END CERTIFICATE-----\n"
    try:
        numbers = rsa_verify.public_key_of_certificate(pem)
    except rsa_verify.CertificateError:
        with pytest.raises(signature.CertificateUnavailable, match="signing certificate unusable"):
            signature.load_public_key(pem)
        return
    loaded = signature.load_public_key(pem)
    assert loaded.numbers == numbers
    signed = key.sign(message, padding.PKCS1v15(), hashes.SHA1())
    native = rsa_backend.verify(loaded, message, signed)
    assert native is rsa_verify.verify_sha1(numbers, message, signed)
    if loaded.native is not None:
        assert native is both_verdicts(numbers, message, signed)[0]
