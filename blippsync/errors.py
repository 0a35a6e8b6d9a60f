"""The exception tree, in one place.

    BlippsyncError            a failure the user can act on: the CLI prints one line, exit 1
    ├── ConfigError           bad or missing configuration (names the key and the file)
    ├── DatabaseError         the database cannot be reached or started
    ├── MigrationError        a migration failed or an applied file was edited
    ├── PluginError           a plugin failed to load or registered something invalid
    ├── InputError            bad user input: a file, a row, an argument (names where and why)
    ├── NotFoundError         a business, connection or customer that does not exist
    └── ConnectorError        a connector failed talking to its remote system
        ├── AuthError         credentials are invalid or revoked (needs a human)
        └── TransientError    a temporary failure worth retrying later

Anything else escaping to the CLI is a bug and is reported as one.
"""

from __future__ import annotations


class BlippsyncError(Exception):
    """Base of every error the user can act on."""


class ConfigError(BlippsyncError):
    pass


class DatabaseError(BlippsyncError):
    pass


class MigrationError(BlippsyncError):
    pass


class PluginError(BlippsyncError):
    pass


class InputError(BlippsyncError):
    pass


class NotFoundError(BlippsyncError):
    pass


class ConnectorError(BlippsyncError):
    pass


class AuthError(ConnectorError):
    """Credentials are invalid or revoked; the connection gets `connection_status`."""

    connection_status = "token_expired"


class TransientError(ConnectorError):
    pass
