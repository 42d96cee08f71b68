"""os.environ, which every in-process function and the moto server's client settings share."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


def restore_environment(saved: Mapping[str, str | None]) -> None:
    """Put back values saved from os.environ (None: the variable was not set)."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class ProcessEnvironment:
    """os.environ shared by overlapping invocations: saved on the first entry, restored on the last exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._saved: dict[str, str | None] = {}

    @contextmanager
    def entered(self, values: dict[str, str]) -> Iterator[None]:
        with self._lock:
            for name in values:
                self._saved.setdefault(name, os.environ.get(name))
            os.environ.update(values)
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if self._inside == 0:
                    restore_environment(self._saved)
                    self._saved.clear()
