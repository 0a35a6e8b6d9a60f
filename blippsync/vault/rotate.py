"""`keys rotate`: re-encrypt every stored token under the current key, resumably.

It also rewrites unbound bsv1 ciphertexts as bsv2, bound to their table, column, business
and row (run it once after upgrading; reads accept bsv1 meanwhile).

Rows are visited in id order in small batches, each committed on its own, and only
values not yet under the current key are touched, so an interrupted rotation simply
continues. Every update is a compare-and-set on the old ciphertexts: a refresh that wrote
new tokens in between wins, and its tokens are already under the current key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from blippsync.database import Database
from blippsync.vault.keys import PREFIX, KeyRing, ciphertext_key_id, is_ciphertext
from blippsync.vault.store import ROW_KEY_COLUMN, sealed_at

BATCH_ROWS = 200
# table -> sealed columns (constants, never user input)
SEALED_COLUMNS: dict[str, tuple[str, ...]] = {
    "integrations_quickbooks": ("access_token", "refresh_token", "previous_refresh_token"),
    "integrations_jobber": ("access_token", "refresh_token", "previous_refresh_token"),
    "connections": ("credentials", "previous_credentials"),
}


@dataclass
class RotateReport:
    reencrypted: dict[str, int] = field(default_factory=dict)  # table -> values re-encrypted
    skipped_changed: int = 0  # rows a concurrent refresh rewrote first (already current)
    not_ciphertext: int = 0  # values that are not our ciphertext (left alone, reported)


def rotate_keys(db: Database, ring: KeyRing, batch_rows: int = BATCH_ROWS) -> RotateReport:
    report = RotateReport()
    for table, columns in SEALED_COLUMNS.items():
        report.reencrypted[table] = 0
        stale = " OR ".join(f"({c} IS NOT NULL AND {c} NOT LIKE :current)" for c in columns)
        select = sa.text(f"SELECT id, business_id, {ROW_KEY_COLUMN[table]} AS row_key, "
                         f"{', '.join(columns)} FROM public.{table} "
                         f"WHERE id > :after AND ({stale}) ORDER BY id LIMIT :n")
        sets = ", ".join(f"{c} = :new_{c}" for c in columns)
        same = " AND ".join(f"{c} IS NOT DISTINCT FROM :old_{c}" for c in columns)
        update = sa.text(f"UPDATE public.{table} SET {sets} WHERE id = :id AND {same}")
        after = "00000000-0000-0000-0000-000000000000"
        while True:
            with db.begin() as conn:
                rows = conn.execute(select, {"after": after, "n": batch_rows,
                                             "current": f"{PREFIX}:{ring.current_id}:%"}).all()
                for row in rows:
                    params: dict[str, object] = {"id": row.id}
                    changed = 0
                    for c in columns:
                        old = getattr(row, c)
                        params[f"old_{c}"] = params[f"new_{c}"] = old
                        if old is None or ring.is_current(old):
                            continue
                        if not is_ciphertext(old) or ciphertext_key_id(old) is None:
                            report.not_ciphertext += 1
                            continue
                        at = sealed_at(table, c, row.business_id, row.row_key)
                        params[f"new_{c}"] = ring.encrypt(
                            ring.decrypt(old, at, where=f"{table}.{c}"), at)
                        changed += 1
                    if changed:
                        if conn.execute(update, params).rowcount:
                            report.reencrypted[table] += changed
                        else:
                            report.skipped_changed += 1
            if len(rows) < batch_rows:
                break
            after = str(rows[-1].id)
    return report
