"""What each statement on a connection really did: its executed plan, and the rows it touched.

`capture_plans(conn)` runs every SELECT/INSERT/UPDATE/DELETE/WITH statement issued through
the SQLAlchemy connection once more under `EXPLAIN (ANALYZE, FORMAT JSON)` inside a
savepoint that is rolled back, just before the real execution: same data, same
statistics, same plan, and no side effect. Works on any PostgreSQL (no auto_explain).
`rows_touched` totals the rows every plan node produced or discarded, over all its loops:
a statement whose cost grows with what is stored, rather than with its input, shows it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

_EXPLAINABLE = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)
_COUNTED = ("Actual Rows", "Rows Removed by Filter", "Rows Removed by Join Filter",
            "Rows Removed by Index Recheck")


@dataclass(frozen=True)
class StatementPlan:
    sql: str
    plan: dict[str, Any]

    @property
    def name(self) -> str:
        """The statement's first line that is not a comment (enough to recognise it)."""
        for line in self.sql.splitlines():
            if line.strip() and not line.lstrip().startswith("--"):
                return line.strip()[:80]
        return self.sql[:80]

    @property
    def rows_touched(self) -> float:
        return _touched(self.plan["Plan"])


def _touched(node: dict[str, Any]) -> float:
    loops = node.get("Actual Loops", 1) or 0
    own = sum(float(node.get(key, 0)) for key in _COUNTED) * loops
    return own + sum(_touched(child) for child in node.get("Plans", ()))


@contextlib.contextmanager
def capture_plans(conn: sa.Connection) -> Iterator[list[StatementPlan]]:
    """Collect the executed plan of every explainable statement run on `conn` (which must be
    inside a transaction, as the probe uses a savepoint)."""
    plans: list[StatementPlan] = []

    def probe(_conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any,
              executemany: bool) -> None:
        if executemany or not _EXPLAINABLE.match(statement):
            return
        with cursor.connection.cursor() as explain:
            explain.execute("SAVEPOINT blipp_plan_probe")
            explain.execute("EXPLAIN (ANALYZE, FORMAT JSON)\n" + statement, parameters)
            plan = explain.fetchone()[0][0]
            explain.execute("ROLLBACK TO SAVEPOINT blipp_plan_probe")
        plans.append(StatementPlan(statement, plan))

    sa.event.listen(conn, "before_cursor_execute", probe)
    try:
        yield plans
    finally:
        sa.event.remove(conn, "before_cursor_execute", probe)
