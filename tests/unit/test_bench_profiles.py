"""`make bench` is the quick profile (under 15 minutes on 2 cores); `make bench-full` runs the sizes
the docs quote. One code path: the profiles only change sizes."""

from __future__ import annotations

import re
from pathlib import Path

from bench.run import PROFILES

ROOT = Path(__file__).resolve().parents[2]


def test_make_bench_is_the_quick_profile_and_bench_full_the_full_one():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^bench: build\n\t.*bench\.run --profile quick", makefile, re.M)
    assert re.search(r"^bench-full: build\n\t.*bench\.run --profile full", makefile, re.M)


def test_the_quick_profile_leaves_the_hour_long_sizes_to_the_full_one():
    quick, full = PROFILES["quick"], PROFILES["full"]
    assert max(quick.imports) < 100_000 <= max(full.imports)  # the 100k-line import: full only
    assert 100_000 not in quick.naive_sizes and 100_000 in full.naive_sizes
    assert quick.send_sample and full.send_sample is None
    # Every goal is still checked in the quick run: the same window sizes, growth from two steps,
    # the report at 100k ledger items.
    assert quick.sizes == full.sizes and len(quick.imports) >= 2 and quick.ledger == full.ledger == 100_000
    assert quick.suffix and not full.suffix  # the quick run never overwrites the quoted results
