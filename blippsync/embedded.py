"""The embedded PostgreSQL: the `pgserver` wheel's binaries under a data directory.

Started on demand and left running, so later commands reuse it (like a local service);
`blippsync db stop` stops it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from blippsync.errors import DatabaseError

log = logging.getLogger(__name__)
DATABASE_NAME = "blippsync"


def embedded_url(data_dir: Path) -> str:
    """Start (or find running) the embedded server and return a SQLAlchemy URL for it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver

            data_dir.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(data_dir, cleanup_mode=None)
            uri = server.get_uri()
            if not _database_exists(server):
                server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    except Exception as exc:  # pgserver raises bare exceptions from initdb/pg_ctl
        raise DatabaseError(f"embedded PostgreSQL under {data_dir} could not start: "
                            f"{_first_line(exc)} (see {data_dir / 'log'})") from exc
    return uri.replace("postgresql://", "postgresql+psycopg://", 1).replace(
        "/postgres?", f"/{DATABASE_NAME}?", 1)


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; True when it did."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        # pgserver defines its command wrappers at import time, so its stubs do not list them
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    if not (data_dir / "postmaster.pid").exists():
        return False
    import os
    import platform

    user = "pgserver" if platform.system() != "Windows" and os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "stop"], pgdata=data_dir, user=user)
    except Exception as exc:  # pg_ctl failures surface as CalledProcessError
        raise DatabaseError(f"embedded PostgreSQL under {data_dir} could not be stopped: "
                            f"{_first_line(exc)}") from None
    return True


def _database_exists(server: object) -> bool:
    out = server.psql(  # type: ignore[attr-defined]
        f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    return "(1 row)" in out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
