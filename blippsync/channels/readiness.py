"""Can the configured channels deliver what the journeys send? Checked at start-up.

`run` and `run-once` call `check_channels` before any work: a setting that would make
every email undeliverable or unlawful is an error then (not a failed step at 3 a.m.),
and the outbox, which sends nothing, is announced loudly, since production silently
"sending" into files is the worst kind of quiet.
"""

from __future__ import annotations

import logging

from blippsync.channels import EMAIL, SMS
from blippsync.channels.email import real_address
from blippsync.config import Config
from blippsync.errors import ConfigError

log = logging.getLogger(__name__)
OUTBOX = "outbox"


def active_channels(config: Config) -> dict[str, str]:
    """kind -> the channel plugin delivering it."""
    return {kind: config[f"channels.{kind}"] for kind in (EMAIL, SMS)}


def check_channels(config: Config) -> list[str]:
    """Warnings to show; ConfigError for a configuration that cannot send properly."""
    warnings: list[str] = []
    channels = active_channels(config)
    outbox = sorted(kind for kind, name in channels.items() if name == OUTBOX)
    if outbox:
        where = config.resolve_path("channels.outbox_dir")
        warnings.append(f"{' and '.join(k.upper() for k in outbox)} go to the OUTBOX: messages "
                        f"are written as files under {where} and NOT SENT to anyone (set "
                        + " / ".join(f"channels.{k}" for k in outbox) + " for real delivery)")
    link_base = (config["http.public_base_url"] or config["journeys.review_link_base_url"])
    if channels[EMAIL] == "smtp":
        problem = real_address(config["smtp.from_address"] or "")
        if problem:
            raise ConfigError(f"channels.email = \"smtp\" needs a real smtp.from_address: "
                              f"{problem}" if config["smtp.from_address"] else
                              "channels.email = \"smtp\" needs smtp.from_address (a mailbox on "
                              "a domain you send for): no email would have a real From")
        if not link_base:
            raise ConfigError("channels.email = \"smtp\" needs http.public_base_url (https): "
                              "every email must carry a working unsubscribe link")
    if channels[EMAIL] != OUTBOX and link_base and not link_base.startswith("https://"):
        warnings.append(f"unsubscribe links use {link_base}: Gmail and Yahoo accept one-click "
                        "unsubscribe (List-Unsubscribe-Post) only on https")
    if channels[SMS] == "twilio" and not config["http.public_base_url"]:
        warnings.append("http.public_base_url is empty: Twilio cannot report delivery, so SMS "
                        "stay 'sent' and carrier failures go unseen")
    return warnings


def announce_channels(config: Config) -> None:
    """Check, then log every warning loudly (stderr, and the service's logs)."""
    for warning in check_channels(config):
        log.warning("WARNING: %s", warning)
