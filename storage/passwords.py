"""Password hashing for dashboard accounts: scrypt from the standard library, with a random salt,
stored as ``scrypt$n$r$p$salt_hex$hash_hex``, checked in constant time.

Each hash costs about 50 ms of CPU: one runs at a time (a flood of logins queues here instead of
taking the cores the bots need; scrypt releases the GIL, so the bots keep running meanwhile). An
unknown username costs the same as a wrong password, so timing does not tell which usernames exist.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading

N, R, P = 2**14, 8, 1
MIN_LENGTH = 8
_HASHING = threading.BoundedSemaphore(1)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    with _HASHING:
        return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=2**26)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, N, R, P, 32)
    return f"scrypt${N}${R}${P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = _scrypt(password, bytes.fromhex(salt_hex), int(n), int(r), int(p), len(digest_hex) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


@functools.cache
def _unknown_user_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def check_password(password: str, stored: str | None) -> bool:
    """``verify_password``, or the same work against a throwaway hash when there is no account."""
    if stored is None:
        verify_password(password, _unknown_user_hash())
        return False
    return verify_password(password, stored)
