"""What the command prints: rich tables for people, one JSON document for scripts.

Colours, live status lines and progress bars appear only when stdout is a terminal (rich decides, and
honours NO_COLOR); piped or captured output is plain text. With `--json` stdout carries exactly one JSON
document and nothing else; notes go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

Advance = Callable[[int], None]
PIPED_WIDTH = 200


class Output:
    def __init__(self, *, as_json: bool = False) -> None:
        self.as_json = as_json
        # Created per command, on the streams of the moment (a test runner swaps them).
        self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        if not self.console.is_terminal and not os.environ.get("COLUMNS"):
            # Piped into a file or another program: whole table rows, not folded to 80 columns.
            self.console.width = PIPED_WIDTH
        self.errors = Console(file=sys.stderr, highlight=False, soft_wrap=True)

    @property
    def interactive(self) -> bool:
        """A person watches stdout: live lines and progress bars make sense."""
        return self.console.is_terminal and not self.as_json

    def line(self, text: str = "", style: str | None = None) -> None:
        """A line for people (not printed with --json)."""
        if not self.as_json:
            self.console.print(text, style=style, markup=False)

    def note(self, text: str) -> None:
        """A remark on stderr (printed with --json too)."""
        self.errors.print(text, markup=False)

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if self.as_json:
            return
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False, box=None)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        self.console.print(table)

    def document(self, document: Any) -> None:
        """The one JSON document of --json."""
        if self.as_json:
            sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Advance]:
        """A progress bar on a terminal; nothing otherwise. Yields `advance(n)`."""
        if not self.interactive or total <= 0:
            yield lambda _n: None
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)

    @contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]:
        """A live status line on a terminal; nothing otherwise. Yields `update(text)`."""
        if not self.interactive:
            yield lambda _text: None
            return
        with self.console.status(text) as live:
            yield lambda new: live.update(new)


def iso(moment: datetime | None) -> str | None:
    """A UTC instant as `2026-11-23T12:00:00Z` (JSON)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def when(moment: datetime | None, now: datetime | None = None) -> str:
    """A UTC instant for people: `2026-11-23 12:00 (3h ago)` (headings say the times are UTC)."""
    if moment is None:
        return "-"
    now = now or datetime.now(UTC)
    seconds = (moment - now).total_seconds()
    relative = duration(abs(seconds))
    hint = f"in {relative}" if seconds > 0 else f"{relative} ago"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} ({hint})"


def duration(seconds: float) -> str:
    """`45s`, `12m`, `3h`, `3h 20m`, `2d 4h`."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60 % 60, seconds // 3600 % 24, seconds // 86400
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def from_millis(value: Any) -> datetime | None:
    """Batch's epoch milliseconds as a UTC datetime."""
    return datetime.fromtimestamp(value / 1000, UTC) if isinstance(value, int | float) and value else None
