"""RSA PKCS#1 v1.5 SHA-1 verification of an X.509 certificate's key, in pure Python.

The certificate reader and the fallback signature check: they need no
compiled code, so they behave the same on every FC Python runtime whatever
``cryptography`` it preinstalls (docs/platform-facts.md "What each FC Python
runtime provides"); ``rsa_backend`` verifies through ``cryptography`` instead
where that gives the same verdict. It does two things only:

* read the RSA modulus and exponent out of a PEM certificate's
  SubjectPublicKeyInfo (RFC 5280 4.1; RFC 8017 A.1.1), with a strict DER
  reader that refuses indefinite or overlong lengths;
* verify by *encoding* the expected block and comparing it whole (RFC 8017
  8.2.2 and 9.2, EMSA-PKCS1-v1_5 with the SHA-1 DigestInfo), never by parsing
  the decrypted block, which is what lets forged signatures through.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

# RFC 8017 9.2 note 1: the DER DigestInfo prefix for SHA-1.
SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")
# rsaEncryption, 1.2.840.113549.1.1.1 (RFC 8017 A.1), DER-encoded OID content.
RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")
MIN_MODULUS_BITS = 512  # MNS's own signing certificate has a 512-bit key
MAX_MODULUS_BITS = 8192

_SEQUENCE, _INTEGER, _BIT_STRING, _NULL, _OID, _VERSION = 0x30, 0x02, 0x03, 0x05, 0x06, 0xA0


class CertificateError(ValueError):
    """The PEM is not an X.509 certificate with an RSA key this module can use."""


@dataclass(frozen=True)
class RsaPublicKey:
    modulus: int
    exponent: int

    @property
    def size_bytes(self) -> int:
        return (self.modulus.bit_length() + 7) // 8


def _element(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``."""
    if pos + 2 > end:
        raise CertificateError("truncated DER element")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > end:
            raise CertificateError("unsupported DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
        if length < 0x80 or data[pos - count] == 0:
            raise CertificateError("non-minimal DER length")
    if pos + length > end:
        raise CertificateError("DER element runs past its container")
    return tag, pos, pos + length


def _expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    found, start, stop = _element(data, pos, end)
    if found != tag:
        raise CertificateError(f"expected {what}")
    return start, stop


def _positive_integer(data: bytes, start: int, stop: int, what: str) -> int:
    content = data[start:stop]
    if not content or content[0] & 0x80:
        raise CertificateError(f"{what} is not a positive integer")
    return int.from_bytes(content, "big")


def pem_to_der(pem: bytes) -> bytes:
    """The DER bytes of the first ``CERTIFICATE`` block of a PEM document."""
    text = pem.decode("ascii", "replace")
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.find(begin)
    stop = text.find(end, start + len(begin))
    if start < 0 or stop < 0:
        raise CertificateError("not a PEM certificate")
    body = "".join(text[start + len(begin):stop].split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError("PEM certificate body is not base64") from None


def public_key_of_certificate(pem: bytes) -> RsaPublicKey:
    """The RSA key of a PEM X.509 certificate (validity dates are not judged here)."""
    der = pem_to_der(pem)
    cert_start, cert_end = _expect(der, 0, len(der), _SEQUENCE, "a certificate SEQUENCE")
    if cert_end != len(der):
        raise CertificateError("trailing bytes after the certificate")
    tbs_start, tbs_end = _expect(der, cert_start, cert_end, _SEQUENCE, "tbsCertificate")
    pos = tbs_start
    tag, _, stop = _element(der, pos, tbs_end)
    if tag == _VERSION:  # [0] EXPLICIT Version, absent for v1 certificates
        pos = stop
    # serialNumber, signature, issuer, validity, subject: skipped in order.
    for tag_wanted, what in ((_INTEGER, "serialNumber"), (_SEQUENCE, "signature algorithm"),
                             (_SEQUENCE, "issuer"), (_SEQUENCE, "validity"), (_SEQUENCE, "subject")):
        _, pos = _expect(der, pos, tbs_end, tag_wanted, what)
    spki_start, spki_end = _expect(der, pos, tbs_end, _SEQUENCE, "subjectPublicKeyInfo")
    alg_start, alg_end = _expect(der, spki_start, spki_end, _SEQUENCE, "a key AlgorithmIdentifier")
    oid_start, oid_end = _expect(der, alg_start, alg_end, _OID, "a key algorithm OID")
    if der[oid_start:oid_end] != RSA_ENCRYPTION_OID:
        raise CertificateError("signing certificate has no RSA key")
    bits_start, bits_end = _expect(der, alg_end, spki_end, _BIT_STRING, "the subjectPublicKey BIT STRING")
    if bits_start >= bits_end or der[bits_start] != 0:
        raise CertificateError("subjectPublicKey has unused bits")
    key_start, key_end = _expect(der, bits_start + 1, bits_end, _SEQUENCE, "an RSAPublicKey SEQUENCE")
    n_start, n_end = _expect(der, key_start, key_end, _INTEGER, "the RSA modulus")
    e_start, e_end = _expect(der, n_end, key_end, _INTEGER, "the RSA exponent")
    if e_end != key_end:
        raise CertificateError("RSAPublicKey has trailing fields")
    key = RsaPublicKey(_positive_integer(der, n_start, n_end, "the RSA modulus"),
                       _positive_integer(der, e_start, e_end, "the RSA exponent"))
    if not MIN_MODULUS_BITS <= key.modulus.bit_length() <= MAX_MODULUS_BITS:
        raise CertificateError(f"RSA key of {key.modulus.bit_length()} bits is outside "
                               f"{MIN_MODULUS_BITS}-{MAX_MODULUS_BITS}")
    if key.exponent < 3 or key.exponent % 2 == 0:
        raise CertificateError("RSA exponent is not an odd number of at least 3")
    return key


def verify_sha1(key: RsaPublicKey, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is the RSASSA-PKCS1-v1_5 SHA-1 signature of ``message``."""
    k = key.size_bytes
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.modulus:
        return False
    encoded = pow(s, key.exponent, key.modulus).to_bytes(k, "big")
    digest_info = SHA1_DIGEST_INFO + hashlib.sha1(message).digest()
    expected = b"\x00\x01" + b"\xff" * (k - 3 - len(digest_info)) + b"\x00" + digest_info
    return hmac.compare_digest(encoded, expected)
