"""A business's data out and back in: `blippsync export` writes every row the business
owns (tables found in the catalog, secrets left out) with a manifest; `blippsync restore`
puts it into an empty business, here or in another database (docs/deployment.md)."""

from __future__ import annotations

from blippsync.export.dump import export_business
from blippsync.export.restore import RestoreResult, restore_business

__all__ = ["RestoreResult", "export_business", "restore_business"]
