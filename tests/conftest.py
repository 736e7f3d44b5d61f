"""Shared test builders, and the `unit` / `aws` split (`make test-unit` runs `pytest -m unit`).

Every test gets exactly one of the two markers, by its file:
- ``unit``: the pure core (domain rules, calendar, messages, phones, orders, privacy) and the
  services over the in-memory fakes. No moto, no AWS client, no template: seconds.
- ``aws``: moto, the handlers, the template, the packaging, the CLI's demo, the bench, the report
  page in headless Chromium, and the contract tests that keep the fakes honest against moto.

A test file not listed below is classed by what it imports (moto, boto3, the CLI's moto tooling,
the bench or the template make it ``aws``), so a new file lands on the right side; list it here
once it settles.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nudge.domain.config import Config
from tests.builders import AT, SHANGHAI, config, order_record

UNIT_FILES = frozenset(
    {
        "test_messages.py",
        "test_orders.py",
        "test_phones.py",
        "test_privacy.py",
        "test_restdays.py",
        "test_rules.py",
        "test_services.py",
        "test_variants.py",
    }
)
AWS_FILES = frozenset(
    {
        "test_bench_generator.py",
        "test_cli.py",
        "test_dal.py",
        "test_fakes.py",
        "test_packaging.py",
        "test_pipeline.py",
        "test_report_browser.py",  # headless Chromium, not the pure core
        "test_template.py",
    }
)
_AWS_HINTS = re.compile(r"^\s*(from|import)\s+(moto|boto3|botocore|bench|nudge_local)\b|template\.yaml", re.M)
_kind_by_file: dict[Path, str] = {}


def kind_of(path: Path) -> str:
    """``unit`` or ``aws`` for a test file (see the module docstring)."""
    if path.name in UNIT_FILES:
        return "unit"
    if path.name in AWS_FILES:
        return "aws"
    if path not in _kind_by_file:
        _kind_by_file[path] = "aws" if _AWS_HINTS.search(path.read_text(encoding="utf-8")) else "unit"
    return _kind_by_file[path]


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
