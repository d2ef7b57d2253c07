"""Progress of the CLI's long commands (plan, reconcile, review, audit export, replay) on stderr:
one line rewritten in place on a terminal, nothing when stderr is a pipe or a file, so scripts and
logs get only the result. SCIM_BRIDGE_PROGRESS=always prints each step as a line even when piped
(a CI log that wants them), =never silences a terminal too."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

THROTTLE_SECONDS = 0.2  # a counter is redrawn at most this often


class Progress:
    def __init__(self, command: str, stream: TextIO | None = None) -> None:
        self.command = command
        self.stream = stream or sys.stderr
        terminal = _isatty(self.stream)
        mode = os.environ.get("SCIM_BRIDGE_PROGRESS", "auto").lower()
        self.enabled = mode == "always" or (mode == "auto" and terminal)
        self.live = terminal  # rewrite one line; otherwise one line per step
        self._drawn = False
        self._counted_at = 0.0

    def __call__(self, message: str) -> None:
        """A step (the callbacks of Reconciler and build_review take this)."""
        if not self.enabled:
            return
        if self.live:
            self.stream.write(f"\r\033[K{self.command}: {message}")
            self._drawn = True
        else:
            self.stream.write(f"{self.command}: {message}\n")
        self.stream.flush()

    def count(self, done: int, what: str) -> None:
        now = time.monotonic()
        if self.live and now - self._counted_at >= THROTTLE_SECONDS:
            self._counted_at = now
            self(f"{done} {what}")

    def done(self) -> None:
        """Clear the live line, so the result prints on a clean one."""
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
