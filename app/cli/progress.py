"""A plain terminal progress bar on standard error (no dependency): for long imports and exports.

Shown only when standard error is a terminal, or when asked with ``--progress`` (then also into a pipe or a
log, one line per update instead of redrawing). Never on standard output, so ``--json`` output stays clean.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``update(done)`` redraws ``LABEL  done/total [#####-----] 50%`` at most every 0.1 s; ``close()`` ends it."""

    def __init__(self, label: str, total: int | None = None, *, enabled: bool | None = None,
                 stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = self.tty if enabled is None else enabled
        self.label, self.total, self.width = label, total, width
        self.done = 0
        self._last = 0.0
        self._shown = False

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and not (self.total and done >= self.total):
            return
        self._last = now
        self._draw()

    def _draw(self) -> None:
        if self.total:
            frac = min(1.0, self.done / self.total)
            fill = int(frac * self.width)
            line = (f"{self.label}  {self.done:,}/{self.total:,} [{'#' * fill}{'-' * (self.width - fill)}] "
                    f"{100 * frac:3.0f}%")
        else:
            line = f"{self.label}  {self.done:,}"
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """Draw the final count and end the line (nothing when the bar was never shown)."""
        if not self.enabled:
            return
        self._draw()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
