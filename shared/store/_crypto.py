"""Tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256) under HSQBO_ENCRYPTION_KEY.

Fernet ciphertexts are randomized, so the store cannot compare two of them; a refresh token is also kept as a
keyed digest (HMAC-SHA256 under a key derived from the same secret) for compare-and-swap in SQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.errors import ConfigError

KEY_VARIABLE = "HSQBO_ENCRYPTION_KEY"


class TokenCipher:
    """Encrypts, decrypts and digests tokens; without a key every use raises ConfigError naming the variable."""

    def __init__(self, key: str | None) -> None:
        self._fernet: Fernet | None = None
        self._digest_key = b""
        if key is None:
            return
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
            self._fernet = Fernet(key)
        except ValueError:  # bad base64 (binascii.Error) or wrong length
            raise ConfigError(f"{KEY_VARIABLE} is invalid: not a Fernet key (urlsafe base64 of 32 bytes)") from None
        self._digest_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"hsqbo refresh token digest"
        ).derive(raw)

    def encrypt(self, token: str) -> str:
        return self._require().encrypt(token.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._require().decrypt(ciphertext.encode("ascii")).decode()
        except InvalidToken:
            raise ConfigError(f"{KEY_VARIABLE} does not decrypt the stored credentials (wrong key?)") from None

    def digest(self, token: str) -> str:
        self._require()
        return hmac.new(self._digest_key, token.encode(), hashlib.sha256).hexdigest()

    def _require(self) -> Fernet:
        if self._fernet is None:
            raise ConfigError(f"{KEY_VARIABLE} is required to store or read credentials but not set")
        return self._fernet
