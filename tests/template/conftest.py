"""Template tests run offline: samtranslator only needs a region to resolve AWS::Region/Partition."""

from __future__ import annotations

import pytest

from tests.template.cfn import REGION


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
