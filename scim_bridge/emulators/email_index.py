"""Find an account by email without scanning every account (the 100,000-user bench creates
tens per second, and a scan per create would make the emulator, not the rate limit, the
bottleneck).

The table stays the truth: a hit is checked against it, and the index is rebuilt whenever the
table changed behind the emulator's back (a test inserting or removing accounts directly) or
an email changed through an update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class EmailIndex:
    def __init__(
        self, table: dict[str, dict[str, Any]], counts: Callable[[dict[str, Any]], bool] = lambda row: True
    ) -> None:
        self.table = table
        self.counts = counts  # e.g. iconik: a DELETED user no longer holds its email
        self._ids: dict[str, str] = {}
        self._size = -1

    def find(self, email: str, other_than: str | None = None) -> dict[str, Any] | None:
        if len(self.table) != self._size:
            self._rebuild()
        key = email.lower()
        row = self.table.get(self._ids.get(key, ""))
        if row is not None and (row.get("email") or "").lower() == key and row["id"] != other_than and self.counts(row):
            return row
        if row is not None:  # stale entry: fall back to the truth once
            self._rebuild()
            row = self.table.get(self._ids.get(key, ""))
            if row is not None and row["id"] != other_than and self.counts(row):
                return row
        return None

    def added(self, row: dict[str, Any]) -> None:
        """The emulator added `row` to the table (keeps the index without a rebuild)."""
        if len(self.table) == self._size + 1:
            self._ids[(row.get("email") or "").lower()] = row["id"]
            self._size += 1

    def changed(self) -> None:
        self._size = -1  # an email changed: rebuild on the next find

    def _rebuild(self) -> None:
        self._ids = {}
        for row in self.table.values():
            if self.counts(row):
                self._ids.setdefault((row.get("email") or "").lower(), row["id"])
        self._size = len(self.table)
