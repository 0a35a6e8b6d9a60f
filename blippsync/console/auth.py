"""Who may see the console: an operator password (stored as an scrypt hash), or a sign-in
a trusted reverse proxy already did; remembered in an HMAC-signed session cookie.

The hash format is `scrypt$<n>$<r>$<p>$<salt, base64>$<key, base64>` (hashlib.scrypt, no
extra dependency), made by `blippsync console hash-password`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import time
from dataclasses import dataclass

from blippsync.config import Config
from blippsync.errors import ConfigError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAXMEM_BYTES = 64 * 1024 * 1024
COOKIE_NAME = "blippsync_console"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> str:
    """A new scrypt hash of `password` with a random salt, for console.password_hash."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p,
                         maxmem=SCRYPT_MAXMEM_BYTES, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ConfigError("console.password_hash is not an scrypt hash "
                          "(make one with `blippsync console hash-password`)")
    try:
        return int(parts[1]), int(parts[2]), int(parts[3]), _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise ConfigError("console.password_hash is malformed "
                          "(make one with `blippsync console hash-password`)") from None


def verify_password(password: str, stored: str) -> bool:
    n, r, p, salt, key = _parse_hash(stored)
    given = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p,
                           maxmem=SCRYPT_MAXMEM_BYTES, dklen=len(key))
    return hmac.compare_digest(given, key)


@dataclass(frozen=True)
class Access:
    """The console's access settings, checked once when the console is built."""

    password_hash: str
    proxy_header: str
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    session_key: bytes
    session_seconds: int

    @classmethod
    def from_config(cls, config: Config) -> Access:
        password_hash = str(config["console.password_hash"]).strip()
        proxy_header = str(config["console.proxy_header"]).strip().lower()
        if not password_hash and not proxy_header:
            raise ConfigError("console.enabled is on but no sign-in is configured: set "
                              "console.password_hash (`blippsync console hash-password`) or "
                              "console.proxy_header")
        if password_hash:
            _parse_hash(password_hash)
        try:
            proxies = tuple(ipaddress.ip_network(a, strict=False)
                            for a in config["console.trusted_proxies"])
        except ValueError as exc:
            raise ConfigError(f"console.trusted_proxies: {exc}") from None
        secret = str(config["console.session_secret"])
        key = hashlib.sha256(secret.encode()).digest() if secret else os.urandom(32)
        return cls(password_hash, proxy_header, proxies, key,
                   int(float(config["console.session_hours"]) * 3600))

    def trusted(self, client_host: str | None) -> bool:
        """Does the request come from one of the configured reverse proxies?"""
        if not client_host:
            return False
        try:
            address = ipaddress.ip_address(client_host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)

    def proxy_operator(self, headers: dict[str, str], client_host: str | None) -> str | None:
        if not self.proxy_header or not self.trusted(client_host):
            return None
        name = headers.get(self.proxy_header, "").strip()
        return name or None

    # --- the session cookie: base64(json).base64(hmac) ---------------------------------

    def issue(self, operator: str, now: float | None = None) -> str:
        payload = json.dumps({"sub": operator,
                              "exp": int((now or time.time()) + self.session_seconds)})
        body = _b64(payload.encode())
        return f"{body}.{_b64(self._sign(body))}"

    def operator(self, cookie: str | None, now: float | None = None) -> str | None:
        """The operator a cookie names, or None when it is missing, forged or expired."""
        if not cookie or "." not in cookie:
            return None
        body, _, signature = cookie.partition(".")
        try:
            if not hmac.compare_digest(_unb64(signature), self._sign(body)):
                return None
            payload = json.loads(_unb64(body))
        except (ValueError, TypeError):
            return None
        if not isinstance(payload, dict) or payload.get("exp", 0) < (now or time.time()):
            return None
        sub = payload.get("sub")
        return sub if isinstance(sub, str) and sub else None

    def _sign(self, body: str) -> bytes:
        return hmac.new(self.session_key, body.encode(), hashlib.sha256).digest()
