"""`blippsync export` / `restore`: every tenant table out (found in the catalog), no secret
out, the round trip exact, and every refusal clear and harmless."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from console_seed import PLANTED_SECRETS, seed

from blippsync.app import App
from blippsync.cli import cli
from blippsync.config import load_config
from blippsync.database import Database
from blippsync.demo import run_demo
from blippsync.errors import InputError, NotFoundError
from blippsync.export import export_business, restore_business
from blippsync.plugins import load_plugins
from blippsync.testing.database import fresh_database

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MORE_SECRETS = ("jobber-access-CIPHERTEXT", "jobber-refresh-CIPHERTEXT", "review-link-tok3n")


def _exec(db: Database, sql: str, **params: Any) -> Any:
    with db.begin() as conn:
        result = conn.execute(sa.text(sql), params)
        return result.scalar() if result.returns_rows else None


def _fill_every_table(db: Database, business: uuid.UUID) -> None:
    """A row in each tenant table the seed and the demo leave empty."""
    tech = _exec(db, "INSERT INTO techs (business_id, name, email) VALUES (:b, 'Tom Tech', "
                     "'tom@acme.test') RETURNING id", b=business)
    code = _exec(db, "INSERT INTO qr_codes (business_id, code, tech_id, label, scan_count) "
                     "VALUES (:b, 'ACME-TRUCK-1', :t, 'Truck 1', 12) RETURNING id",
                 b=business, t=tech)
    _exec(db, "INSERT INTO qr_scans (business_id, qr_code_id, tech_id) VALUES (:b, :q, :t)",
          b=business, q=code, t=tech)
    customer = _exec(db, "SELECT id FROM customers WHERE business_id = :b ORDER BY name "
                         "LIMIT 1", b=business)
    _exec(db, "INSERT INTO private_feedback (business_id, customer_id, customer_email, rating, "
              "feedback, source) VALUES (:b, :c, 'zoe@example.com', 2, 'Late, and the "
              "sink still drips', 'qr')", b=business, c=customer)
    _exec(db, "INSERT INTO customer_identities (business_id, source, external_id, customer_id) "
              "VALUES (:b, 'csv', 'CSV-ROW-9', :c)", b=business, c=customer)
    _exec(db, "INSERT INTO identity_conflicts (business_id, source, external_id, customer_id, "
              "field, value, reason) VALUES (:b, 'csv', 'CSV-ROW-10', :c, 'email', "
              "'zoe@example.com', 'email belongs to another customer')", b=business, c=customer)
    _exec(db, "INSERT INTO inbound_sms (business_id, customer_id, from_number, body, keyword) "
              "VALUES (:b, :c, '+12125550101', 'STOP', 'stop')", b=business, c=customer)
    sequence = _exec(db, "SELECT id FROM sequences WHERE business_id = :b ORDER BY name LIMIT 1",
                     b=business)
    _exec(db, "INSERT INTO customer_enrollments_archive (id, business_id, sequence_id, "
              "customer_id, current_step, status, enrolled_at, created_at, updated_at) VALUES "
              "(gen_random_uuid(), :b, :s, :c, 2, 'completed', now() - interval '200 days', "
              "now() - interval '200 days', now() - interval '100 days')",
              b=business, s=sequence, c=customer)
    connection = _exec(db, "SELECT id FROM connections WHERE business_id = :b ORDER BY "
                           "connector LIMIT 1", b=business)
    _exec(db, "INSERT INTO webhook_deliveries (connector, dedupe_key, connection_id, "
              "business_id, entity, entity_id, state) VALUES ('quickbooks', :k, :c, :b, "
              "'Invoice', '77', 'processed')", k=f"evt-{uuid.uuid4()}", c=connection, b=business)
    _exec(db, "INSERT INTO integrations_jobber (business_id, access_token, refresh_token, "
              "account_id) VALUES (:b, :a, :r, 'JOB-1')", b=business, a=MORE_SECRETS[0],
          r=MORE_SECRETS[1])
    _exec(db, "UPDATE review_requests SET review_token = :t WHERE id = (SELECT id FROM "
              "review_requests WHERE business_id = :b ORDER BY id LIMIT 1)",
          t=MORE_SECRETS[2], b=business)


@pytest.fixture
def world(db: Database, tmp_path: Path, database_url: str) -> Iterator[dict[str, Any]]:
    """The seeded businesses plus the demo's, run through the real journey engine."""
    seeded = seed(db)
    _fill_every_table(db, seeded.acme)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n[csv]\ninbox_dir = "{tmp_path}/in"\n'
                   f'[channels]\noutbox_dir = "{tmp_path}/out"\n')
    app = App(load_config(cfg, environ={}))
    demo = run_demo(app, load_plugins())
    yield {"acme": seeded.acme, "bright": seeded.bright, "demo": uuid.UUID(demo.business_id)}
    app.close()


def _tenant_tables(db: Database) -> set[str]:
    """Written independently of the exporter: information_schema's tables with business_id."""
    with db.connect() as conn:
        return {r[0] for r in conn.execute(sa.text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name = 'business_id'"))}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_writes_every_tenant_table_and_no_secret(db, world, tmp_path) -> None:
    out = tmp_path / "acme"
    manifest = export_business(db, str(world["acme"]), out)
    files = {t.name: t for t in manifest.tables}
    # every table with a business_id (but the identity provider's profiles), the business
    # itself, the child tables and the shared source names
    assert set(files) == (_tenant_tables(db) - {"profiles"}) | {
        "businesses", "sequence_steps", "customer_enrollments", "customer_sources"}
    assert [s["name"] for s in manifest.skipped_tables] == ["profiles"]
    for name, entry in files.items():
        if entry.kind == "owned":
            expected = _exec(db, f"SELECT count(*) FROM {name} WHERE business_id = :b",
                             b=world["acme"])
            assert entry.rows == expected, name
            assert entry.rows > 0 or name in ("webhook_deliveries",), name
    assert files["sequence_steps"].rows == _exec(
        db, "SELECT count(*) FROM sequence_steps st JOIN sequences s ON s.id = st.sequence_id "
            "WHERE s.business_id = :b", b=world["acme"]) == 2
    assert files["customer_enrollments"].rows == _exec(
        db, "SELECT count(*) FROM customer_enrollments e JOIN customers c ON c.id = "
            "e.customer_id WHERE c.business_id = :b", b=world["acme"]) >= 3
    # the manifest's checksums and counts are the files'
    for entry in manifest.tables:
        data = (out / entry.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256
        assert len(data.splitlines()) == entry.rows
    everything = "".join(p.read_text() for p in out.iterdir())
    for secret in PLANTED_SECRETS[:3] + MORE_SECRETS:
        assert secret not in everything
    assert set(files["integrations_jobber"].excluded_columns) == {
        "access_token", "refresh_token", "previous_refresh_token"}
    assert "token_expires_at" in files["integrations_jobber"].columns
    assert "credentials" not in _lines(out / "connections.jsonl")[0]
    # nothing of another business
    for other in (world["bright"], world["demo"]):
        assert str(other) not in everything
    assert "Zoe Other" not in everything
    archived = _lines(out / "customer_enrollments_archive.jsonl")
    assert archived[0]["status"] == "completed"


def _column_ids(folder: Path) -> set[str]:
    """Every uuid found in a column's own value (not inside a JSON document) of an export."""
    found: set[str] = set()
    for path in folder.glob("*.jsonl"):
        for row in _lines(path):
            for value in row.values():
                if isinstance(value, str):
                    found.update(UUID.findall(value))
    return found


def _export_tables(db: Database, business: str, folder: Path, fmt: str) -> dict[str, str]:
    manifest = export_business(db, business, folder, fmt)
    return {t.name: t.sha256 for t in manifest.tables}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_round_trip_into_another_database_is_exact(db, world, tmp_path, pg_server_url,
                                                   fmt) -> None:
    for business in (world["acme"], world["demo"]):
        original = _export_tables(db, str(business), tmp_path / f"a-{business}", fmt)
        with fresh_database(pg_server_url) as other_url:
            other = Database(other_url, pool_size=1)
            try:
                result = restore_business(other, tmp_path / f"a-{business}")
                assert result.business_created and not result.ids_remapped
                again = _export_tables(other, str(business), tmp_path / f"b-{business}", fmt)
            finally:
                other.dispose()
        assert again == original


def test_restore_under_a_new_id_remaps_every_id_consistently(db, world, tmp_path,
                                                             pg_server_url) -> None:
    export_business(db, str(world["demo"]), tmp_path / "a")
    new_id = uuid.uuid4()
    # beside the original, in the same database: no id collides
    result = restore_business(db, tmp_path / "a", str(new_id))
    assert result.ids_remapped and result.business_created
    export_business(db, str(new_id), tmp_path / "b")
    # no id of the original is left in any column (JSON documents such as a sent
    # message's metadata are history, quoted as they were, and are not rewritten)
    old_ids, new_ids = _column_ids(tmp_path / "a"), _column_ids(tmp_path / "b")
    assert len(old_ids) == len(new_ids) > 40 and not old_ids & new_ids
    # the same story, told with new ids: each customer keeps its events and journeys
    story = sa.text("""
        SELECT c.external_id, e.dedupe_key, s.name AS sequence, en.status, st.step_order,
               r.status AS message, split_part(r.send_key, ':', 1) = en.id::text AS key_ok
        FROM customers c
        JOIN trigger_events e ON e.customer_id = c.id
        LEFT JOIN customer_enrollments en ON en.customer_id = c.id
        LEFT JOIN sequences s ON s.id = en.sequence_id
        LEFT JOIN sequence_steps st ON st.sequence_id = s.id
        LEFT JOIN review_requests r ON r.enrollment_id = en.id
        WHERE c.business_id = :b ORDER BY 1, 2, 3, 5""")
    with db.connect() as conn:
        before = [tuple(r) for r in conn.execute(story, {"b": world["demo"]})]
        after = [tuple(r) for r in conn.execute(story, {"b": new_id})]
    assert before and after == before
    assert all(row[-1] in (True, None) for row in after)


def test_restore_refusals_change_nothing(db, world, tmp_path) -> None:
    export_business(db, str(world["acme"]), tmp_path / "a")
    # the business still has its rows
    with pytest.raises(InputError, match="already has rows in"):
        restore_business(db, tmp_path / "a")
    # a copy beside the original under a new id: a webhook notice (like a QR code) is
    # unique across businesses
    with pytest.raises(InputError, match=r"restore refused in (qr_codes|webhook_deliveries): "
                                         r"duplicate key.*already exists.*nothing restored"):
        restore_business(db, tmp_path / "a", str(uuid.uuid4()))
    # a damaged file is caught before anything is written
    path = tmp_path / "a" / "customers.jsonl"
    path.write_text(path.read_text().replace("Zoe", "Zed"))
    target = uuid.uuid4()
    with pytest.raises(InputError, match="customers.jsonl: checksum does not match"):
        restore_business(db, tmp_path / "a", str(target))
    assert _exec(db, "SELECT count(*) FROM businesses WHERE id = :b", b=target) == 0
    with pytest.raises(InputError, match="not an empty folder"):
        export_business(db, str(world["acme"]), tmp_path / "a")
    with pytest.raises(NotFoundError):
        export_business(db, str(uuid.uuid4()), tmp_path / "c")
    with pytest.raises(InputError, match="no manifest"):
        restore_business(db, tmp_path)


def test_restore_into_an_existing_empty_business(db, world, tmp_path) -> None:
    export_business(db, str(world["acme"]), tmp_path / "a", "csv")
    empty = _exec(db, "INSERT INTO businesses (name, created_by) VALUES ('Placeholder', "
                      "'ops@acme.test') RETURNING id")
    for unique_everywhere in ("qr_codes", "webhook_deliveries"):
        _exec(db, f"DELETE FROM {unique_everywhere} WHERE business_id = :b", b=world["acme"])
    result = restore_business(db, tmp_path / "a", str(empty))
    assert not result.business_created
    assert _exec(db, "SELECT name FROM businesses WHERE id = :b", b=empty) == "Acme Plumbing"
    assert _exec(db, "SELECT count(*) FROM customers WHERE business_id = :b", b=empty) == 4


def test_cli_export_and_restore(database_url, world, tmp_path, pg_server_url) -> None:
    env = {"BLIPPSYNC_DATABASE_URL": database_url, "BLIPPSYNC_LOGGING_FORMAT": "text"}
    out = tmp_path / "export"
    ran = CliRunner().invoke(cli, ["export", "--business", str(world["acme"]), "--format",
                                   "csv", "--output", str(out)], env=env)
    assert ran.exit_code == 0, ran.output
    assert "exported" in ran.output and "not exported: profiles" in ran.output
    assert json.loads((out / "manifest.json").read_text())["file_format"] == "csv"
    bad = CliRunner().invoke(cli, ["export", "--business", "nope", "--output",
                                   str(tmp_path / "x")], env=env)
    assert bad.exit_code == 1 and "is not a business id" in bad.output
    assert "Traceback" not in bad.output
    with fresh_database(pg_server_url) as other_url:
        ran = CliRunner().invoke(cli, ["restore", str(out), "--json"],
                                 env={**env, "BLIPPSYNC_DATABASE_URL": other_url})
        assert ran.exit_code == 0, ran.output
        assert json.loads(ran.output[ran.output.index("{"):])["rows"]["customers"] == 4


def test_a_table_added_later_is_exported_and_restored_without_code(db, tmp_path,
                                                                   pg_server_url) -> None:
    """As another change would add them: a tenant table with a secret, and a child table
    reached only through a foreign key (grandchild of the business)."""
    added = """
        CREATE TABLE public.email_opt_outs (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            business_id uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
            email text NOT NULL, unsubscribe_token text, opted_out_at timestamptz NOT NULL);
        CREATE TABLE public.qr_code_prints (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            qr_code_id uuid NOT NULL REFERENCES public.qr_codes (id) ON DELETE CASCADE,
            scanned_at timestamptz NOT NULL, user_agent text);
    """
    seeded = seed(db)
    _fill_every_table(db, seeded.acme)
    with db.begin() as conn:
        conn.execute(sa.text(added))
        conn.execute(sa.text(
            "INSERT INTO email_opt_outs (business_id, email, unsubscribe_token, opted_out_at) "
            "VALUES (:b, 'zoe@example.com', 'unsubscribe-SECRET', now())"), {"b": seeded.acme})
        conn.execute(sa.text(
            "INSERT INTO qr_code_prints (qr_code_id, scanned_at, user_agent) SELECT id, now(), "
            "'Mobile Safari' FROM qr_codes WHERE business_id = :b"), {"b": seeded.acme})
    manifest = export_business(db, str(seeded.acme), tmp_path / "a")
    files = {t.name: t for t in manifest.tables}
    assert files["email_opt_outs"].rows == 1 and files["qr_code_prints"].rows == 1
    assert files["email_opt_outs"].excluded_columns == ["unsubscribe_token"]
    assert files["qr_code_prints"].kind == "child"
    assert "unsubscribe-SECRET" not in (tmp_path / "a" / "email_opt_outs.jsonl").read_text()
    with fresh_database(pg_server_url) as other_url:
        other = Database(other_url, pool_size=1)
        try:
            with other.begin() as conn:
                conn.execute(sa.text(added))
            restore_business(other, tmp_path / "a")
            again = export_business(other, str(seeded.acme), tmp_path / "b")
        finally:
            other.dispose()
    assert {t.name: t.sha256 for t in again.tables} == {t.name: t.sha256
                                                        for t in manifest.tables}


@pytest.mark.parametrize("column, type_name, secret", [
    ("access_token", "text", True), ("previous_refresh_token", "text", True),
    ("credentials", "text", True), ("previous_credentials", "text", True),
    ("review_token", "text", True), ("client_secret", "character varying", True),
    ("password", "text", True), ("api_key", "jsonb", True),
    ("token_expires_at", "timestamp with time zone", False),
    ("refresh_token_expires_at", "timestamp with time zone", False),
    ("dedupe_key", "text", False), ("send_key", "text", False), ("tokenizer", "text", False),
    ("webhook_url", "text", False), ("stripe_customer_id", "text", False)])
def test_secret_column_rule(column, type_name, secret) -> None:
    from blippsync.export.tables import is_secret

    assert is_secret(column, type_name) is secret
