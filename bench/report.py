"""How every bench script ends: an aligned table of (name, value) rows, then one JSON line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def print_report(rows: Sequence[tuple[str, Any]], result: dict[str, Any]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(result, sort_keys=True))
