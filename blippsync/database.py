"""Connecting to PostgreSQL: the configured server, or the embedded one.

SQLAlchemy Core on psycopg 3 carries every query; the raw psycopg connection is used
where the driver does better on its own (binary COPY).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from blippsync.config import Config
from blippsync.embedded import embedded_url
from blippsync.errors import DatabaseError


def normalize_url(url: str) -> str:
    """Accept postgres://, postgresql:// and postgresql+psycopg:// alike."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class Database:
    """One engine per process; every query of the core goes through here."""

    def __init__(self, url: str, *, pool_size: int = 5, connect_args: dict[str, Any] | None = None):
        self.url = normalize_url(url)
        if not self.url.startswith("postgresql+psycopg://"):
            # never echo the value: an unparsable URL may be a password pasted in the wrong place
            scheme = url.split("://", 1)[0] + "://" if "://" in url else "no scheme"
            raise DatabaseError(f"database URL must start with postgresql:// (got {scheme[:20]})")
        try:
            self.engine: Engine = sa.create_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                connect_args=dict(connect_args or {}))
        except (sa.exc.ArgumentError, ValueError) as exc:
            raise DatabaseError(f"database URL {redact_url(url)!r} is not valid: {exc}") from None

    @classmethod
    def from_config(cls, config: Config) -> Database:
        url = config["database.url"] or embedded_url(config.resolve_path("database.data_dir"))
        return cls(url, pool_size=config["database.pool_size"],
                   connect_args=config["database.connect_args"])

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection in autocommit-free mode; the caller commits."""
        try:
            conn = self.engine.connect()
        except sa.exc.OperationalError as exc:
            raise DatabaseError(f"cannot connect to {redact_url(self.url)}: "
                                f"{_reason(exc)}") from None
        with conn:
            yield conn

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success."""
        with self.connect() as conn, conn.begin():
            yield conn

    def check(self) -> str:
        """Raise DatabaseError unless the server answers; return its version string."""
        with self.connect() as conn:
            return str(conn.execute(sa.text("SHOW server_version")).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()


def driver_connection(conn: Connection) -> Any:
    """The psycopg connection under a SQLAlchemy one (for COPY)."""
    return conn.connection.driver_connection


def _reason(exc: sa.exc.OperationalError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else "connection failed"
