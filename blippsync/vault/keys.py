"""Encryption at rest: AES-256-GCM under named keys, so keys can be rotated.

A key is 32 random bytes written as url-safe base64. Its id is derived from the key
itself (first 8 hex digits of its SHA-256), so operators handle one string per key and a
ciphertext always says which key made it:

    bsv2:<key id>:<base64url(nonce || ciphertext+tag)>

A bsv2 ciphertext is bound to where it is stored (associated data: table, column, business
and row, see `SealedAt`), so a value copied into another row, column or business does not
open. bsv1 (constant associated data, before binding) still opens, so existing rows keep
working; every write seals bsv2 and `blippsync keys rotate` rewrites what is left.

The first key of the ring encrypts; every key decrypts. Keys come from
BLIPPSYNC_ENCRYPTION_KEYS (comma-separated) or `encryption.key_file` (one key per line,
first line encrypts).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blippsync.config import Config
from blippsync.errors import ConfigError
from blippsync.redaction import register_secret

PREFIX = "bsv2"
LEGACY_PREFIX = "bsv1"  # unbound: read, never written
KEY_BYTES = 32
NONCE_BYTES = 12
_LEGACY_AAD = b"blippsync-vault/v1"


@dataclass(frozen=True)
class SealedAt:
    """Where a ciphertext is stored; its associated data, so it opens only there."""

    table: str
    column: str
    business_id: uuid.UUID | str
    row: uuid.UUID | str  # the row's unique key within the table

    def associated_data(self) -> bytes:
        return (f"blippsync-vault/v2\n{self.table}.{self.column}\n{self.business_id}\n"
                f"{self.row}").encode()


class DecryptError(ConfigError):
    """A ciphertext could not be opened: unknown key id, wrong key, or tampered data."""


def generate_key() -> str:
    """A fresh key, printable and pasteable into BLIPPSYNC_ENCRYPTION_KEYS."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def is_ciphertext(value: str | None) -> bool:
    return bool(value) and value.startswith(  # type: ignore[union-attr]
        (PREFIX + ":", LEGACY_PREFIX + ":"))


def ciphertext_key_id(value: str) -> str | None:
    parts = value.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] in (PREFIX, LEGACY_PREFIX) else None


@dataclass(frozen=True)
class KeyRing:
    """Named AES-GCM keys; `current` encrypts, all decrypt."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)  # (key id, key), current first

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    def encrypt(self, plaintext: str, at: SealedAt) -> str:
        kid, key = self.keys[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), at.associated_data())
        return f"{PREFIX}:{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, value: str, at: SealedAt, *, where: str = "a stored token") -> str:
        """The plaintext, registered with the log redactor before it is returned. A bsv2
        value opens only where it was sealed (`at`)."""
        kid = ciphertext_key_id(value)
        if kid is None:
            raise DecryptError(f"{where} is not a blippsync ciphertext (plaintext in the "
                               "database? reconnect, or run `blippsync keys rotate`)")
        key = dict(self.keys).get(kid)
        if key is None:
            raise DecryptError(f"{where} was encrypted with key {kid}, which is not among the "
                               f"configured keys ({', '.join(k for k, _ in self.keys)})")
        try:
            raw = base64.urlsafe_b64decode(value.split(":", 2)[2])
            aad = at.associated_data() if value.startswith(PREFIX + ":") else _LEGACY_AAD
            plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise DecryptError(f"{where} cannot be decrypted with key {kid} (corrupted, "
                               "tampered, or copied from another row or business)") from None
        register_secret(plain)
        return plain

    def is_current(self, value: str) -> bool:
        """Sealed bound (bsv2) under the current key: nothing for a rotation to do."""
        return value.startswith(f"{PREFIX}:{self.current_id}:")


def parse_key(text: str, where: str) -> tuple[str, bytes]:
    text = text.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where}: an encryption key must be {KEY_BYTES} bytes in url-safe "
                          "base64 (make one with `blippsync keys generate`)")
    register_secret(text)
    return key_id(key), key


def keyring_from_strings(keys: list[str], where: str) -> KeyRing:
    parsed = [parse_key(k, f"{where} (key {i + 1})") for i, k in enumerate(keys) if k.strip()]
    if not parsed:
        raise ConfigError(f"{where}: no encryption key (set BLIPPSYNC_ENCRYPTION_KEYS or "
                          "encryption.key_file; make one with `blippsync keys generate`)")
    unique: dict[str, bytes] = {}
    for kid, key in parsed:  # a repeated key keeps its first place
        unique.setdefault(kid, key)
    return KeyRing(tuple(unique.items()))


def load_keyring(config: Config) -> KeyRing:
    """The ring from `encryption.keys` (env BLIPPSYNC_ENCRYPTION_KEYS) or `encryption.key_file`."""
    keys = [k for k in config["encryption.keys"] if k.strip()]
    if keys:
        return keyring_from_strings(keys, "encryption.keys")
    file_setting = config["encryption.key_file"]
    if file_setting:
        path = config.resolve_path("encryption.key_file")
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"encryption.key_file: cannot read {path}: {exc.strerror}") from None
        return keyring_from_strings([ln for ln in lines if ln.strip() and not ln.startswith("#")],
                                    str(path))
    return keyring_from_strings([], "configuration")
