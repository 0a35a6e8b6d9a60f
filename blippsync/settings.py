"""Every configuration key, declared as data: type, default and help text.

The declaration is the single source of truth for `config.toml`, the
`BLIPPSYNC_*` environment variables and the configuration reference in the
README (a test fails when one of them drifts from this list).
"""

from __future__ import annotations

from collections.abc import Mapping
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
    Setting("sync.lock_wait_seconds", int, 120, "How long import csv, customers add and "
            "run-once wait for a connection another process is syncing (a killed process's "
            "session can hold it for a moment) before failing with exit 1; 0: fail at once."),
    Setting("sync.backfill_horizon_days", int, 14, "Events older than this are stored as "
            "historical and never start a journey, whatever pass brought them (first, --full, "
            "incremental, webhook)."),
    Setting("sync.noop_run_retention_days", int, 7, "Succeeded sync runs that changed nothing "
            "(no customer created, updated or rejected, no event, no conflict, merge or problem; "
            "not a --full pass) are deleted once this old (daily). A connection's latest run, a "
            "run in progress and a run an identity conflict points at are kept. 0: kept like "
            "the others."),
    Setting("sync.run_retention_days", int, 365, "Every other finished sync run (changes, "
            "failures, interruptions, --full passes) is deleted once this old (daily), with the "
            "same exceptions. 0: kept forever."),
    Setting("sync.default_country", str, "US", "Region for phone numbers written without a "
            "country code, when the business has none."),
    Setting("sync.default_timezone", str, "America/New_York", "Time zone given to new businesses "
            "when none is named."),
    # --- csv connector ----------------------------------------------------------------------
    Setting("csv.inbox_dir", str, ".blippsync/inbox", "Folder watched for <business_id>/*.csv "
            "files, relative to the config file's folder."),
    Setting("csv.inbox_settle_seconds", float, 10.0, "An inbox file is taken only once its size "
            "and modification time have not changed for this long (dotfiles, *.part and *.tmp "
            "are never taken)."),
    Setting("csv.columns", dict, {}, "Column mapping: our field name -> the CSV header to read it "
            "from (fields: external_id, name, first_name, last_name, email, phone, address, tags, "
            "completed_at)."),
    Setting("csv.date_order", str, "mdy", "How slash dates in a csv date column read: mdy "
            "(5/1/2024 is May 1, the US way) or dmy (1 May). ISO and dotted dates are fixed."),
    # --- journeys (routing, execution, retention) --------------------------------------------
    Setting("journeys.route_batch_size", int, 1000, "Trigger events claimed per routing "
            "transaction."),
    Setting("journeys.execute_batch_size", int, 500, "Due enrollments claimed per execution "
            "transaction."),
    Setting("journeys.cooldown_days", int, 180, "Re-enrollment cooldown of a sequence unless its "
            "settings say otherwise (cooldown_days)."),
    Setting("journeys.review_cap_days", int, 90, "At most one review request to a customer across "
            "all sequences within this many days."),
    Setting("journeys.sms_daily_cap", int, 3, "At most this many SMS to one customer per 24 "
            "hours."),
    Setting("journeys.sms_hours", str, "08:00-21:00", "Local hours (business time zone) SMS may be "
            "sent in; a sequence may only narrow them (settings.sms_hours)."),
    Setting("journeys.email_hours", str, "08:00-21:00", "Local hours email may be sent in unless "
            "a sequence says otherwise (settings.email_hours; \"00:00-24:00\" for any time)."),
    Setting("journeys.max_attempts", int, 3, "Delivery attempts before a step is failed."),
    Setting("journeys.retry_backoff_seconds", int, 300, "First retry delay; each later retry waits "
            "four times longer."),
    Setting("journeys.in_flight_chunk", int, 100, "Messages marked in flight per commit before "
            "their provider calls, their outcomes committed before the next chunk: the most a "
            "crash can leave with an unknown outcome."),
    Setting("journeys.render_timeout_seconds", float, 2.0, "Time one message template may take "
            "to render; a slower one fails its step (also checked when a sequence is written)."),
    Setting("journeys.render_max_chars", int, 100_000, "Longest text one message template may "
            "render; a longer one fails its step (also checked when a sequence is written)."),
    Setting("journeys.send_lease_seconds", int, 600, "How long a claimed send may take before "
            "another worker treats its outcome as unknown."),
    Setting("journeys.retention_days", int, 90, "Finished enrollments older than this move to "
            "customer_enrollments_archive."),
    Setting("journeys.event_retention_days", int, 400, "Trigger events whose routing is "
            "finished (routed or historical) and whose date is older than this are deleted "
            "(daily); pending events never are, and decisions keep their row without the event. "
            "Must exceed sync.backfill_horizon_days: the stored dedupe key is what stops a "
            "redelivered event from starting a journey twice, and once it is gone only the "
            "horizon does (a redelivery older than it is stored as historical). 0: kept "
            "forever."),
    Setting("journeys.review_link_base_url", str, "", "Base URL of the review-link redirector "
            "(<base>/r/<token> records the click). Empty: messages link to the Google review URL "
            "directly."),
    Setting("journeys.sms_stop_footer", str, " Reply STOP to opt out.", "Appended to an SMS whose "
            "text does not mention STOP."),
    # --- channels (message delivery) ---------------------------------------------------------
    Setting("channels.email", str, "outbox", "Channel plugin that delivers email steps (outbox, "
            "smtp, or a plugin's)."),
    Setting("channels.sms", str, "outbox", "Channel plugin that delivers SMS steps (outbox, "
            "twilio, or a plugin's)."),
    Setting("channels.outbox_dir", str, ".blippsync/outbox", "Where the outbox channel writes "
            "messages, relative to the config file's folder."),
    Setting("smtp.host", str, "localhost", "SMTP server for the smtp channel."),
    Setting("smtp.port", int, 587, "SMTP port."),
    Setting("smtp.username", str, "", "SMTP login (empty: no AUTH)."),
    Setting("smtp.password", str, "", "SMTP password.", secret=True),
    Setting("smtp.starttls", bool, True, "Upgrade the connection with STARTTLS (required when "
            "a username is set, unless the server is on loopback)."),
    Setting("smtp.from_address", str, "", "From: address of review emails unless the business "
            "has its own (businesses.email_from_address). Required by the smtp channel: `run` "
            "and `run-once` refuse to start without a real one."),
    Setting("smtp.timeout_seconds", float, 30.0, "SMTP socket timeout."),
    Setting("smtp.reply_to", str, "", "Reply-To: of review emails unless the business has its "
            "own (businesses.email_reply_to). Empty: replies go to the From address."),
    Setting("twilio.account_sid", str, "", "Twilio Account SID (AC...)."),
    Setting("twilio.auth_token", str, "", "Twilio auth token.", secret=True),
    Setting("twilio.from_number", str, "", "Sending number in E.164 (or use "
            "twilio.messaging_service_sid)."),
    Setting("twilio.messaging_service_sid", str, "", "Twilio Messaging Service SID (MG...), used "
            "instead of from_number when set."),
    Setting("twilio.base_url", str, "https://api.twilio.com", "Twilio REST base URL."),
    Setting("twilio.timeout_seconds", float, 15.0, "HTTP timeout of one Twilio call."),
    Setting("email.unsubscribe_mailto", str, "", "Mailbox also offered in List-Unsubscribe "
            "(mailto:, beside the https one-click link); whoever reads it must honour the "
            "requests. Empty: the https link only."),
    # --- encryption / token vault (issue 4) ---------------------------------------------------
    Setting("encryption.keys", list, [], "Token encryption keys (comma-separated in the "
            "environment): the first encrypts, all decrypt. Make one with `blippsync keys "
            "generate`.", secret=True),
    Setting("encryption.key_file", str, "", "File with one key per line (first encrypts), used "
            "when encryption.keys is empty; relative to the config file's folder."),
    Setting("vault.refresh_margin_seconds", int, 300, "Refresh an access token this long before "
            "it expires (never on every call)."),
    Setting("vault.refresh_attempts", int, 4, "Tries against a token endpoint answering 5xx or "
            "timing out, with backoff, before giving up for this pass (nothing is marked)."),
    # --- quickbooks connector (issue 4) ------------------------------------------------------
    Setting("quickbooks.client_id", str, "", "Intuit app client id."),
    Setting("quickbooks.client_secret", str, "", "Intuit app client secret.", secret=True),
    Setting("quickbooks.environment", str, "production", "production or sandbox (picks the API "
            "base URL)."),
    Setting("quickbooks.api_base_url", str, "", "API base URL; empty: the environment's preset."),
    Setting("quickbooks.token_url", str, "https://oauth.platform.intuit.com/oauth2/v1/tokens/"
            "bearer", "OAuth token endpoint."),
    Setting("quickbooks.revoke_url", str, "https://developer.api.intuit.com/v2/oauth2/tokens/"
            "revoke", "OAuth revocation endpoint."),
    Setting("quickbooks.authorize_url", str, "https://appcenter.intuit.com/connect/oauth2",
            "OAuth authorization page."),
    Setting("quickbooks.redirect_uri", str, "", "Registered redirect URI for `connect quickbooks` "
            "(empty: a loopback http://127.0.0.1:<port>/callback)."),
    Setting("quickbooks.webhook_verifier_token", str, "", "Webhook verifier token (not the "
            "client secret).", secret=True),
    Setting("quickbooks.minor_version", int, 75, "minorversion sent with every API call."),
    Setting("quickbooks.requests_per_minute", int, 500, "Request budget per company (realm), "
            "shared by every worker."),
    Setting("quickbooks.max_in_flight", int, 10, "Concurrent requests per company (realm)."),
    Setting("quickbooks.page_size", int, 1000, "MAXRESULTS of a query page (at most 1000)."),
    Setting("quickbooks.use_cdc", bool, True, "Use Change Data Capture for incremental runs "
            "within 30 days of the cursor."),
    Setting("quickbooks.timeout_seconds", float, 60.0, "HTTP timeout of one API call."),
    Setting("quickbooks.max_retries", int, 5, "Retries in place of a 429, 5xx, SystemFault, "
            "timeout or dropped connection before the pass fails (honouring Retry-After in "
            "seconds or as a date, else 60 s for 429, else jittered exponential backoff)."),
    # --- jobber connector (issue 5) ----------------------------------------------------------
    Setting("jobber.client_id", str, "", "Jobber app client id (Developer Center)."),
    Setting("jobber.client_secret", str, "", "Jobber app client secret; also the webhook HMAC "
            "key.", secret=True),
    Setting("jobber.graphql_url", str, "https://api.getjobber.com/api/graphql",
            "GraphQL endpoint."),
    Setting("jobber.token_url", str, "https://api.getjobber.com/api/oauth/token",
            "OAuth token endpoint."),
    Setting("jobber.authorize_url", str, "https://api.getjobber.com/api/oauth/authorize",
            "OAuth authorization page."),
    Setting("jobber.redirect_uri", str, "", "Callback URL registered for the app (`connect "
            "jobber`)."),
    Setting("jobber.api_version", str, "2025-04-16", "X-JOBBER-GRAPHQL-VERSION sent with every "
            "query; a deprecation warning from Jobber is logged once per run."),
    Setting("jobber.page_size", int, 100, "Items per page (1..100), lowered automatically so a "
            "query asks for at most jobber.max_query_cost_fraction of the cost bucket."),
    Setting("jobber.max_query_cost_fraction", float, 0.25, "Largest share of Jobber's query-cost "
            "bucket one query may request."),
    Setting("jobber.overlap_seconds", int, 3600, "Each incremental pass re-reads this much "
            "before its watermarks (late writes; duplicates are harmless)."),
    Setting("jobber.initial_lookback_days", int, 30, "Completed jobs and paid invoices read on a "
            "first or --full pass."),
    Setting("jobber.request_timeout_seconds", float, 30.0, "HTTP timeout of one GraphQL call."),
    # --- logging ----------------------------------------------------------------------------
    Setting("logging.level", str, "INFO", "Log level: DEBUG, INFO, WARNING, ERROR."),
    Setting("logging.format", str, "auto", "auto (text on a terminal, JSON lines otherwise), "
            "text or json."),
    # --- daemon (`blippsync run`) -------------------------------------------------------------
    Setting("daemon.id", str, "", "This replica's name in leases and heartbeats. Empty: "
            "<hostname>-<pid>-<random>, new at every start."),
    Setting("daemon.tick_seconds", float, 2.0, "How often the scheduler looks for due work."),
    Setting("daemon.workers", int, 2, "Connections synced at once by this replica."),
    Setting("daemon.lease_seconds", int, 60, "How long a claimed connection stays ours without a "
            "renewal; a crashed replica's work is taken over after this."),
    Setting("daemon.shutdown_grace_seconds", float, 20.0, "On SIGTERM/SIGINT: time given to the "
            "work in hand to finish or checkpoint before the process exits anyway."),
    Setting("daemon.sync_interval_seconds", int, 900, "Time between two syncs of a connection "
            "(a connection's own sync_interval_seconds wins)."),
    Setting("daemon.sync_intervals", dict, {}, "Per-connector sync interval in seconds "
            "(connector name -> seconds), between the default and a connection's own."),
    Setting("daemon.retry_seconds", int, 300, "Wait before retrying a connection whose sync "
            "failed (doubled per consecutive failure, up to the sync interval)."),
    Setting("daemon.journey_interval_seconds", float, 5.0, "How often events are routed and due "
            "journey steps executed."),
    Setting("daemon.journey_batch_size", int, 100, "Events routed / steps executed per claim."),
    Setting("daemon.inbox_scan_seconds", float, 30.0, "How often the csv inbox is scanned "
            "for new files."),
    Setting("daemon.webhook_batch_size", int, 100, "Webhook notices fetched per connection pass."),
    Setting("daemon.webhook_max_attempts", int, 8, "A webhook notice failing this many times is "
            "marked failed (the daily reconciliation still catches its change)."),
    Setting("daemon.token_refresh_interval_seconds", int, 60, "How often tokens near expiry are "
            "refreshed."),
    Setting("daemon.token_refresh_ahead_seconds", int, 600, "Refresh tokens expiring within "
            "this many seconds."),
    Setting("daemon.reconcile_interval_hours", float, 24.0, "Reconciliation of webhook-driven "
            "connections: each is made due, and its sync from its cursor (QuickBooks: CDC) catches "
            "changes whose webhook never arrived."),
    Setting("daemon.retention_days", int, 30, "Processed webhook notices and stopped daemons' "
            "heartbeats older than this are deleted (daily)."),
    # --- http (webhooks, health, metrics, review links) ---------------------------------------
    Setting("http.enabled", bool, True, "Serve HTTP from `blippsync run`."),
    Setting("http.host", str, "127.0.0.1", "Address to listen on (0.0.0.0 in a container)."),
    Setting("http.port", int, 8080, "Port to listen on (0: any free port, logged)."),
    Setting("http.max_body_bytes", int, 1_048_576, "Webhook bodies larger than this get 413."),
    Setting("http.public_base_url", str, "", "The URL providers and customers reach us at "
            "(https://sync.example.com): signatures over the URL (Twilio) and the address printed "
            "QR codes lead to. Empty: the request's own URL (QR codes need it set)."),
    Setting("http.stale_tick_seconds", float, 60.0, "/healthz reports unhealthy when the "
            "scheduler has not ticked for this long."),
    Setting("http.health_token", str, "", "Bearer token that unlocks the details of /healthz "
            "(database, scheduler, connections needing attention). Empty: /healthz only says "
            "ok or unhealthy; `blippsync status` shows the details.", secret=True),
    # --- console (the operator's web pages, docs/console.md) ---------------------------------
    Setting("console.enabled", bool, False, "Serve the read-only operator console under "
            "console.path, from `blippsync run` and `blippsync console`. Off unless turned on."),
    Setting("console.path", str, "/console", "URL path the console is served under."),
    Setting("console.password_hash", str, "", "scrypt hash of the operator password or token "
            "(make one with `blippsync console hash-password`). Empty: no password sign-in.",
            secret=True),
    Setting("console.proxy_header", str, "", "Request header naming the operator a reverse "
            "proxy has signed in (e.g. X-Forwarded-User); trusted only from "
            "console.trusted_proxies. Empty: sign-in by password only."),
    Setting("console.trusted_proxies", list, ["127.0.0.1", "::1"], "Addresses whose "
            "console.proxy_header and X-Forwarded-Proto are believed."),
    Setting("console.session_secret", str, "", "Key signing the console's session cookie. "
            "Empty: a random key per process (sessions end at restart; set one when several "
            "replicas serve the console).", secret=True),
    Setting("console.session_hours", float, 12.0, "How long a console sign-in lasts."),
    Setting("console.host", str, "127.0.0.1", "Address `blippsync console` listens on."),
    Setting("console.port", int, 8081, "Port `blippsync console` listens on."),
    # --- feedback pages (/f/<token>, /q/<code>) ------------------------------------------------
    Setting("feedback.low_rating_max", int, 3, "Ratings up to this many stars also emit a "
            "feedback_received event (trigger_source feedback) that sequences can start on."),
)

SETTINGS_BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}

# Free-form sections: a plugin's own settings live under [plugins.<name>] and are handed to it
# whole; the core does not validate them.
FREE_FORM_SECTIONS = ("plugins",)


RETENTION_KEYS = ("sync.noop_run_retention_days", "sync.run_retention_days",
                  "journeys.event_retention_days")


def retention_problems(values: Mapping[str, Any]) -> list[str]:
    """What is wrong with the retention settings taken together (empty: nothing).

    A trigger event's stored dedupe key is what keeps a redelivered event (a webhook sent
    again, a CDC window read twice, a --full resync) from being stored, routed and enrolled
    a second time. Once retention deletes the event, the only guard left is the backfill
    horizon: a record older than `sync.backfill_horizon_days` is stored as historical and
    never enrolls anyone. Events are deleted by their business date (occurred_at), so a
    retention longer than the horizon means a redelivery of a deleted event is always older
    than the horizon, hence harmless; a retention at or under it would let the event start
    its journey again.
    """
    problems = [f"'{key}' must be 0 or more, not {values[key]}"
                for key in RETENTION_KEYS if key in values and values[key] < 0]
    events = values.get("journeys.event_retention_days", 0)
    horizon = values.get("sync.backfill_horizon_days", 0)
    if events > 0 and events <= horizon:
        problems.append(
            f"'journeys.event_retention_days' ({events}) must be longer than "
            f"'sync.backfill_horizon_days' ({horizon}), or 0 to keep events: a redelivered "
            "event whose stored copy was deleted inside the horizon would start its journey "
            "again")
    return problems
