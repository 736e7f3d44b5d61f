"""Peak memory of a block of code, for the benchmarks."""

from __future__ import annotations

import gc
import re
from pathlib import Path
from typing import Any

__all__ = ["PeakMemory"]


def _status_kb(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(m.group(1)) if m else None


class PeakMemory:
    """Peak resident memory during a block, above what the process held before it.

    ``method="rss"`` (Linux): the high-water mark (VmHWM) is reset through /proc/self/clear_refs
    before the block and read after it; no overhead, counts everything the process touches.
    ``method="tracemalloc"`` (and the fallback elsewhere): the peak of Python allocations made in
    the block; slows the block down, ignores allocator overhead and memory freed to be reused.
    """

    def __init__(self, method: str = "rss"):
        self.method = method

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self.before_kb = _status_kb("VmRSS") if self.method == "rss" else None
        if self.before_kb is not None:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                self.before_kb = None
        if self.before_kb is None:
            import tracemalloc

            self.method = "tracemalloc"
            tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.method == "rss":
            self.peak_kb = _status_kb("VmHWM") or 0
            self.delta_mb = (self.peak_kb - (self.before_kb or 0)) / 1024
        else:
            import tracemalloc

            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            self.peak_kb = peak // 1024
            self.delta_mb = peak / 2**20

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "VmHWM - VmRSS (clear_refs reset)" if self.method == "rss" else "tracemalloc peak",
            "delta_mb": round(self.delta_mb, 1),
            "before_mb": round((self.before_kb or 0) / 1024, 1),
        }
