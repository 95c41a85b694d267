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
