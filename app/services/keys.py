"""API keys: generation and hashing. The key is shown once; only its SHA-256 is stored.

A key is 32 random bytes (url-safe base64) behind a short visible prefix, e.g.
``nd_4f9c2a1b_Q2x...``. With that much entropy a fast hash is safe (no password
stretching is needed), and lookups are a single indexed equality on the hash.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "nd_"
_PREFIX_HEX = 8


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    prefix: str
    key_hash: str


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> NewKey:
    prefix = KEY_PREFIX + secrets.token_hex(_PREFIX_HEX // 2)
    plaintext = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(plaintext=plaintext, prefix=prefix, key_hash=hash_key(plaintext))


def looks_like_key(candidate: str) -> bool:
    """Cheap shape check before any database lookup."""
    return candidate.startswith(KEY_PREFIX) and 20 <= len(candidate) <= 128 and candidate.isascii()


def bearer_token(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer <token>`` header (RFC 6750), else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
