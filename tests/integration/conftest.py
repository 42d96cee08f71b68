"""One moto server per test module; every test gets a freshly deployed stack (state never leaks)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.core import Emulator


@pytest.fixture(scope="module")
def _emulator_process() -> Iterator[Emulator]:
    # The module-scoped fixture runs outside the per-test loopback guard; moto only binds 127.0.0.1.
    with Emulator() as local:
        yield local


@pytest.fixture
def local(_emulator_process: Emulator) -> Emulator:
    """A fresh account with template.yaml deployed into it (about a second)."""
    _emulator_process.server.reset()
    if _emulator_process.slack is not None:
        _emulator_process.slack.reset()
    _emulator_process.deploy()
    return _emulator_process
