"""Anti-forgery (CSRF) tokens for the hosted forms.

Double submit, signed: the page sets a random nonce in a SameSite=Lax, HttpOnly cookie and
puts HMAC-SHA256(key, nonce | form) in a hidden field; a post is accepted only when the
field matches the cookie it came with. Another site can make a browser post, but can
neither read nor set that cookie, so it cannot produce a matching field. The key lives in
the database (blippsync.form_keys), shared by every replica behind a load balancer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa

from blippsync.database import Database

COOKIE = "blipp_form"
FIELD = "csrf_token"
NONCE_CHARS = 22  # secrets.token_urlsafe(16)
_ENSURE_KEY = sa.text("INSERT INTO blippsync.form_keys (id, secret) VALUES (1, :secret) "
                      "ON CONFLICT (id) DO NOTHING")
_READ_KEY = sa.text("SELECT secret FROM blippsync.form_keys WHERE id = 1")


class FormGuard:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._key: bytes | None = None

    def load_key(self) -> bytes:
        """The signing key, created on first use (a database round trip, then cached)."""
        if self._key is None:
            with self._db.begin() as conn:
                conn.execute(_ENSURE_KEY, {"secret": secrets.token_bytes(32)})
                self._key = bytes(conn.execute(_READ_KEY).scalar_one())
        return self._key

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(16)

    def token(self, nonce: str, form: str) -> str:
        """The hidden field's value for `form` (the page's path) under the cookie `nonce`."""
        return hmac.new(self.load_key(), f"{nonce}|{form}".encode(), hashlib.sha256).hexdigest()

    def valid(self, nonce: str | None, form: str, token: str | None) -> bool:
        if not nonce or not token or len(nonce) < NONCE_CHARS:
            return False
        return hmac.compare_digest(self.token(nonce, form), token)
