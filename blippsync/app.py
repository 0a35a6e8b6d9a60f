"""The process-wide objects a command needs, built lazily: configuration, database."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from blippsync.config import Config
from blippsync.database import Database


@dataclass
class App:
    config: Config
    _migrated: bool = field(default=False, init=False)

    @cached_property
    def db(self) -> Database:
        return Database.from_config(self.config)

    def ready_db(self) -> Database:
        """The database, migrated first when `database.auto_migrate` is on."""
        if self.config["database.auto_migrate"] and not self._migrated:
            from blippsync.migrations import migrate

            migrate(self.db)
            self._migrated = True
        return self.db

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
