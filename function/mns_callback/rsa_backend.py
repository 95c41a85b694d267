"""Which RSA verifier a signing key uses: ``cryptography``'s when it works here, else ``rsa_verify``.

Every FC Python runtime provides ``cryptography`` (docs/platform-facts.md "What
each FC Python runtime provides"; aliyun-python-sdk-core imports it to sign its
requests), and its compiled RSA check costs a fraction of the pure-Python
``pow``. It is used only where it gives the verdict ``rsa_verify.verify_sha1``
gives (tests hold the two to each other on genuine, altered and foreign
signatures):

* the certificate is always read by ``rsa_verify``'s strict DER reader, so both
  paths accept and refuse the same certificates;
* ``cryptography`` must build a key from bare numbers without a backend argument
  (3.1 and later) and pass a known answer once per process, with a key of MNS's
  size (512 bits): a genuine SHA-1 signature verifies and an altered one does not
  (a crypto policy that refuses SHA-1 signatures or small keys fails it);
* a key it will not build (an even modulus, say) and any error other than
  ``InvalidSignature`` while verifying fall back to the pure-Python check.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import Any

from .rsa_verify import RsaPublicKey, verify_sha1

# A throwaway key's modulus (exponent 65537) and its PKCS#1 v1.5 SHA-1 signature of
# SELF_TEST_MESSAGE. The key has 512 bits, as MNS's own signing certificate has: a
# crypto policy that refuses keys that small fails the test, and the pure-Python
# check then verifies every push.
SELF_TEST_MESSAGE = b"mns-callback: RSA PKCS#1 v1.5 SHA-1 self-test"
SELF_TEST_KEY = RsaPublicKey(int.from_bytes(base64.b64decode(
    "yN3mMhVbuiQ1KuGwkTc31I//p09BiifY8T9QoVbbUzESVbqm+UCdpR7ycDZRr9xcyP5nzYQV6FH8u9zPFYGdvQ=="), "big"), 65537)
SELF_TEST_SIGNATURE = base64.b64decode(
    "p7xmA5Zf2lv8Gg1YjaAgG6jigix/yJf08P93gAz8Mdn9z5HLnyyK7wrD3Z0ertmRz4yx86Cy3cdB+Ep2kD6gjg==")


@dataclass(frozen=True)
class VerifyingKey:
    """A certificate's RSA key, with ``cryptography``'s form of it when that path is usable."""

    numbers: RsaPublicKey
    native: Any = None

    @property
    def modulus(self) -> int:
        return self.numbers.modulus

    @property
    def exponent(self) -> int:
        return self.numbers.exponent


class _Native:
    """``cryptography``'s RSA PKCS#1 v1.5 SHA-1 verification, imported once."""

    def __init__(self) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
        from cryptography.hazmat.primitives.hashes import SHA1

        self._invalid = InvalidSignature
        self._numbers = RSAPublicNumbers
        self._padding = PKCS1v15()
        self._hash = SHA1()

    def key(self, numbers: RsaPublicKey) -> Any:
        # No backend argument: cryptography before 3.1 requires one (TypeError).
        return self._numbers(numbers.exponent, numbers.modulus).public_key()

    def verify(self, key: Any, message: bytes, signature: bytes) -> bool:
        try:
            key.verify(signature, message, self._padding, self._hash)
        except self._invalid:
            return False
        return True

    def passes_self_test(self) -> bool:
        key = self.key(SELF_TEST_KEY)
        altered = SELF_TEST_SIGNATURE[:-1] + bytes([SELF_TEST_SIGNATURE[-1] ^ 1])
        return (self.verify(key, SELF_TEST_MESSAGE, SELF_TEST_SIGNATURE)
                and not self.verify(key, SELF_TEST_MESSAGE, altered)
                and not self.verify(key, SELF_TEST_MESSAGE + b".", SELF_TEST_SIGNATURE))


_lock = threading.Lock()
_probed = False
_native: _Native | None = None


def native_backend() -> _Native | None:
    """``cryptography``'s verifier if it imports and passes the self-test here, else None (once per process)."""
    global _probed, _native
    with _lock:
        if not _probed:
            try:
                candidate = _Native()
                _native = candidate if candidate.passes_self_test() else None
            except Exception:  # noqa: BLE001 - any failure means the pure-Python path
                _native = None
            _probed = True
        return _native


def verifying_key(numbers: RsaPublicKey, *, use_native: bool = True) -> VerifyingKey:
    """``numbers`` with ``cryptography``'s key beside them when that path can verify with it."""
    backend = native_backend() if use_native else None
    if backend is None:
        return VerifyingKey(numbers)
    try:
        return VerifyingKey(numbers, backend.key(numbers))
    except Exception:  # noqa: BLE001 - e.g. ValueError for an even modulus: the pure-Python check decides
        return VerifyingKey(numbers)


def verify(key: VerifyingKey, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is the RSASSA-PKCS1-v1_5 SHA-1 signature of ``message`` under ``key``."""
    backend = _native
    if key.native is not None and backend is not None:
        try:
            return backend.verify(key.native, message, signature)
        except Exception:  # noqa: BLE001, S110 - not a verdict: the pure-Python check gives it
            pass
    return verify_sha1(key.numbers, message, signature)
