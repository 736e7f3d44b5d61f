"""Tests by kind, one folder each (`make test-unit` runs tests/unit alone, in seconds):

- ``tests/unit``: the pure core (rules, calendar, messages, phones, orders, report, page) and the
  services over the in-memory fakes (``tests/fakes*.py``). No moto, no AWS client, no template.
- ``tests/contract``: the adapters on moto against their fakes (one contract, two implementations),
  the template, the dashboard, the packaging and the bench's own checks.
- ``tests/pipeline``: the real handlers end to end on a stack built from template.yaml (moto), the
  CLI against it, and the report page in headless Chromium.

Each test is also marked by its folder (``unit``, or ``aws`` for the other two), so ``-m`` works as
before. Builders live in ``tests/builders.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nudge.domain.config import Config
from tests.builders import AT, SHANGHAI, config, order_record

TESTS = Path(__file__).resolve().parent
KINDS = {"unit": "unit", "contract": "aws", "pipeline": "aws"}


def kind_of(path: Path) -> str:
    """``unit`` or ``aws``: the marker of a test file, by its folder."""
    folder = path.resolve().relative_to(TESTS).parts[0]
    if folder not in KINDS:
        raise pytest.UsageError(f"{path}: a test belongs in tests/unit, tests/contract or tests/pipeline")
    return KINDS[folder]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(kind_of(Path(item.path)))


# ------------------------------------------------------------------------------------ builders
# (tests/builders.py; fixtures for the tests that take them as arguments)


@pytest.fixture
def shanghai() -> ZoneInfo:
    return SHANGHAI


@pytest.fixture
def at() -> datetime:
    return AT


@pytest.fixture
def make_order_record() -> Callable[..., dict[str, Any]]:
    return order_record


@pytest.fixture
def make_config() -> Callable[..., Config]:
    return config
