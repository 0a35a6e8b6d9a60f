"""Every configuration key, declared as data: type, default and help text.

The declaration is the single source of truth for `config.toml`, the
`BLIPPSYNC_*` environment variables and the configuration reference in the
README (a test fails when one of them drifts from this list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    key: str  # dotted: "<section>.<name>"
    type: type
    default: Any
    help: str
    secret: bool = False

    @property
    def env_var(self) -> str:
        """The one naming rule: BLIPPSYNC_ + the dotted key upper-cased, dots as underscores."""
        return "BLIPPSYNC_" + self.key.upper().replace(".", "_")


SETTINGS: tuple[Setting, ...] = (
    # --- database ---------------------------------------------------------------------------
    Setting("database.url", str, "", "PostgreSQL URL (Supabase included). Empty: embedded "
            "PostgreSQL under database.data_dir.", secret=True),
    Setting("database.data_dir", str, ".blippsync/pgdata", "Embedded PostgreSQL data directory, "
            "relative to the config file's folder."),
    Setting("database.auto_migrate", bool, True, "Apply pending migrations before run/run-once."),
    Setting("database.pool_size", int, 5, "Connections kept open per process."),
    Setting("database.connect_args", dict, {}, "Extra libpq parameters (sslmode, sslrootcert, "
            "application_name...) passed through to the driver."),
    # --- sync -------------------------------------------------------------------------------
    Setting("sync.batch_size", int, 5000, "Records written per transaction."),
    Setting("sync.backfill_horizon_days", int, 14, "Events older than this on a first or --full "
            "sync are stored as historical and never start a journey."),
    Setting("sync.default_country", str, "US", "Region for phone numbers written without a "
            "country code, when the business has none."),
    Setting("sync.default_timezone", str, "America/New_York", "Time zone given to new businesses "
            "when none is named."),
    # --- csv connector ----------------------------------------------------------------------
    Setting("csv.inbox_dir", str, ".blippsync/inbox", "Folder watched for <business_id>/*.csv "
            "files, relative to the config file's folder."),
    Setting("csv.columns", dict, {}, "Column mapping: our field name -> the CSV header to read it "
            "from (fields: external_id, name, first_name, last_name, email, phone, address, tags, "
            "completed_at)."),
    # --- logging ----------------------------------------------------------------------------
    Setting("logging.level", str, "INFO", "Log level: DEBUG, INFO, WARNING, ERROR."),
    Setting("logging.format", str, "auto", "auto (text on a terminal, JSON lines otherwise), "
            "text or json."),
)

SETTINGS_BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}

# Free-form sections: a plugin's own settings live under [plugins.<name>] and are handed to it
# whole; the core does not validate them.
FREE_FORM_SECTIONS = ("plugins",)
