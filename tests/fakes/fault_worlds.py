"""Whole worlds for the fault and crash suites (tests/test_faults.py, bench/bench_faults.py):
a business connected to a faulty fake QuickBooks or Jobber, a config file `blippsync`
can run with, and the oracle: what the stored state must be, computed from the fake's
own data, independently of the code under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from blippsync.businesses import add_business
from blippsync.config import load_config
from blippsync.database import Database
from blippsync.vault import store_tokens
from fakes.faults import FaultPlan
from fakes.intuit import IntuitState, fake_intuit
from fakes.jobber_fake import ACCOUNT_ID, JobberFake, make_client, make_invoice, make_job
from fakes.qbo_data import customer, invoice
from fakes.qbo_kit import KEY_A, connected_business, qbo_config

REPO = Path(__file__).resolve().parents[2]


@dataclass
class World:
    config_path: Path
    business_id: uuid.UUID
    connection_id: uuid.UUID
    source: str
    customers: dict[str, str]  # external id -> email, as the fake holds them
    facts: set[str]  # dedupe keys of the events the fake's data holds


def blippsync(config_path: Path, *args: str, timeout: float = 900
              ) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLIPPSYNC_")}
    env["BLIPPSYNC_LOGGING_FORMAT"] = "text"
    return subprocess.run([sys.executable, "-m", "blippsync", "--config", str(config_path),
                           *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=REPO)


def stored_state(db: Database, world: World) -> tuple[dict[str, str], dict[str, int]]:
    """(external id -> email of the stored customers, dedupe key -> how many events)."""
    with db.connect() as conn:
        customers = {r.external_id: r.email for r in conn.execute(sa.text(
            "SELECT external_id, email FROM public.customers WHERE business_id = :b "
            "AND source = :s"), {"b": world.business_id, "s": world.source})}
        events = {r.dedupe_key: r.n for r in conn.execute(sa.text(
            "SELECT dedupe_key, count(*) AS n FROM public.trigger_events WHERE business_id = :b "
            "GROUP BY dedupe_key"), {"b": world.business_id})}
    return customers, events


def differences(db: Database, world: World) -> list[str]:
    """Everything in which the stored state differs from the fake's data (empty: equal)."""
    customers, events = stored_state(db, world)
    problems = []
    missing = set(world.customers) - set(customers)
    extra = set(customers) - set(world.customers)
    wrong = [k for k in set(customers) & set(world.customers)
             if customers[k] != world.customers[k]]
    doubled = {k: n for k, n in events.items() if n != 1}
    for what, found in (("customers missing", missing), ("customers not in the source", extra),
                        ("customers with another email", wrong),
                        ("facts with no event", world.facts - set(events)),
                        ("events for no fact", set(events) - world.facts),
                        ("facts with more than one event", doubled)):
        if found:
            problems.append(f"{len(found)} {what}, e.g. {sorted(found)[:3]}")
    return problems


# --- QuickBooks -----------------------------------------------------------------------------

@contextmanager
def quickbooks_world(tmp_path: Path, database_url: str, db: Database, customers: int,
                     faults: FaultPlan | None = None, token_drop_rate: float = 0.0,
                     token_lifetime_seconds: int = 3600, backoff_seconds: float = 1.0,
                     **settings: Any) -> Iterator[tuple[World, IntuitState]]:
    """`customers` customers and one invoice per 4 of them, a third of those paid.

    A short `token_lifetime_seconds` makes the pass refresh its access token as it goes
    (against a token endpoint losing `token_drop_rate` of its answers after rotating,
    with Intuit's grace for the previous refresh token)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = IntuitState(faults=faults, grace_previous=True, drop_refresh_rate=token_drop_rate,
                        expires_in=token_lifetime_seconds)
    for i in range(1, customers + 1):
        state.add("Customer", customer(i, minutes=i / 100, active=i % 25 != 0))
    facts = set()
    for j in range(1, customers // 4 + 1):
        paid = j % 3 == 0
        state.add("Invoice", invoice(j, minutes=j / 50, total=120.0, balance=0.0 if paid else 120.0,
                                     customer_id=str(j), linked=(("Payment", str(9000 + j)),)
                                     if paid else ()))
        if paid:
            facts.add(f"quickbooks:9341452732952867:invoice:{j}:paid")
    with fake_intuit(state) as (url, state):
        config = qbo_config(tmp_path, database_url, url, **settings)
        text = config.path.read_text().replace(
            "refresh_attempts = 3", "refresh_attempts = 6\nrefresh_margin_seconds = "
            f"{min(300, token_lifetime_seconds // 3)}")
        config.path.write_text(text + "[plugins.quickbooks]\n"
                               f"backoff_seconds = {backoff_seconds}\n")
        config = load_config(config.path, environ={})
        business, connection = connected_business(db, config, state.refresh_token)
        yield World(config.path, business, connection.id, "quickbooks",
                    {str(i): f"customer{i}@example.com" for i in range(1, customers + 1)},
                    facts), state


# --- Jobber ---------------------------------------------------------------------------------

@contextmanager
def jobber_world(tmp_path: Path, database_url: str, db: Database, clients: int,
                 faults: FaultPlan | None = None, token_faults: FaultPlan | None = None,
                 restore_rate: float = 500, timeout_seconds: float = 30.0
                 ) -> Iterator[tuple[World, JobberFake]]:
    """`clients` clients; one job per 5 clients (half completed in the last days) and one
    invoice per 5 (a third paid in the last days): the facts of a first pass."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    nodes = [make_client(i, now - timedelta(days=3, seconds=clients - i))
             for i in range(1, clients + 1)]
    jobs, invoices, facts = [], [], set()
    for n in range(1, clients // 5 + 1):
        done = now - timedelta(hours=n % 200 + 1) if n % 2 == 0 else None
        jobs.append(make_job(n, nodes[n - 1], done))
        paid = now - timedelta(hours=n % 300 + 1) if n % 3 == 0 else None
        invoices.append(make_invoice(n, nodes[n - 1], paid))
        if done:
            facts.add(f"jobber:{ACCOUNT_ID}:job:{jobs[-1]['id']}:completed")
        if paid:
            facts.add(f"jobber:{ACCOUNT_ID}:invoice:{invoices[-1]['id']}:paid")
    fake = JobberFake(clients=nodes, jobs=jobs, invoices=invoices, restore_rate=restore_rate,
                      faults=faults, token_faults=token_faults)
    with fake:
        path = tmp_path / "config.toml"
        path.write_text("\n".join([
            "[database]", f'url = "{database_url}"', "pool_size = 3",
            "[encryption]", f'keys = ["{KEY_A}"]', "[vault]", "refresh_attempts = 6",
            "[jobber]", f'client_id = "{fake.client_id}"',
            f'client_secret = "{fake.client_secret}"', f'graphql_url = "{fake.graphql_url}"',
            f'token_url = "{fake.token_url}"', f"request_timeout_seconds = {timeout_seconds}",
        ]) + "\n")
        config = load_config(path, environ={})
        business = add_business(db, name="Green Lawns", owner_email="owner@lawns.test",
                                timezone="America/Chicago")
        connection = store_tokens(db, config, business, "jobber", ACCOUNT_ID, fake.refresh_token)
        yield World(path, business, connection.id, "jobber",
                    {c["id"]: c["emails"][0]["address"] for c in nodes}, facts), fake
