"""Interval estimates for the report: Wilson for one proportion, Newcombe for a difference of two.

Newcombe RG (1998), "Interval estimation for the difference between independent proportions:
comparison of eleven methods", Statistics in Medicine 17:873-890, method 10 (the hybrid score or
"square-and-add" interval). Each arm gets a Wilson score interval without continuity correction;
the two are combined:

    d     = p1 - p2
    lower = d - sqrt((p1 - l1)**2 + (u2 - p2)**2)
    upper = d + sqrt((u1 - p1)**2 + (p2 - l2)**2)

It keeps its coverage near 95% for the small counts and the rates near 0 a shop sees, where the
textbook Wald interval does not. The same interval compares two text variants (variant minus
the first variant) as the reminded group with the holdout.

How many orders a test needs: the classic normal approximation for two proportions with equal
groups and a two-sided test (Fleiss, Levin & Paik, "Statistical Methods for Rates and
Proportions", 3rd ed., 2003, ch. 4, without the continuity correction; R's
``power.prop.test``), with ``q = 1 - p`` and ``p̄ = (p1 + p2) / 2``:

    n = (z_(1-alpha/2) * sqrt(2 p̄ q̄) + z_(power) * sqrt(p1 q1 + p2 q2))**2 / (p1 - p2)**2

per group. Pure, standard library only.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

__all__ = [
    "DiffInterval",
    "Interval",
    "newcombe",
    "orders_per_variant",
    "two_proportion_n",
    "two_proportion_power",
    "wilson",
]


class Interval(NamedTuple):
    estimate: float
    lower: float
    upper: float


class DiffInterval(NamedTuple):
    difference: float
    lower: float
    upper: float


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be strictly between 0 and 1")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)  # 1.959963984540054 at 0.95


def _check(successes: int, trials: int) -> None:
    if isinstance(successes, bool) or isinstance(trials, bool):
        raise TypeError("counts must be integers, not bools")
    if int(successes) != successes or int(trials) != trials:
        raise TypeError("counts must be whole numbers")
    if trials <= 0:
        raise ValueError("trials must be positive")
    if not 0 <= successes <= trials:
        raise ValueError("successes must lie in 0..trials")


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for one binomial proportion (no continuity correction)."""
    _check(successes, trials)
    z = _z(confidence)
    n = float(trials)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = p + z2 / (2.0 * n)
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    lower = (centre - half) / denom
    upper = (centre + half) / denom
    # Exact at the edges (the closed form leaves ~1e-17 of rounding there).
    if successes == 0:
        lower = 0.0
    if successes == trials:
        upper = 1.0
    return Interval(p, max(0.0, lower), min(1.0, upper))


def newcombe(
    successes1: int, trials1: int, successes2: int, trials2: int, confidence: float = 0.95
) -> DiffInterval:
    """Newcombe's hybrid score interval for p1 - p2 (1998, method 10)."""
    p1, l1, u1 = wilson(successes1, trials1, confidence)
    p2, l2, u2 = wilson(successes2, trials2, confidence)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return DiffInterval(d, max(-1.0, lower), min(1.0, upper))


def _rates(p1: float, p2: float) -> None:
    for name, p in (("p1", p1), ("p2", p2)):
        if not 0.0 <= p <= 1.0:  # also refuses NaN
            raise ValueError(f"{name} must lie in 0..1, got {p!r}")
    if p1 == p2:
        raise ValueError("p1 and p2 must differ: no test can tell equal rates apart")


def _level(name: str, value: float) -> float:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return value


def two_proportion_n(p1: float, p2: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Orders per group (not rounded) for a two-sided test at ``alpha`` to tell ``p1`` from ``p2``
    with probability ``power`` (see the module doc; R's ``power.prop.test`` with ``n = NULL``)."""
    _rates(p1, p2)
    z_alpha = NormalDist().inv_cdf(1.0 - _level("alpha", alpha) / 2.0)
    z_power = NormalDist().inv_cdf(_level("power", power))
    mean = (p1 + p2) / 2.0
    spread = z_alpha * math.sqrt(2.0 * mean * (1.0 - mean)) + z_power * math.sqrt(
        p1 * (1.0 - p1) + p2 * (1.0 - p2)
    )
    return spread * spread / ((p1 - p2) ** 2)


def two_proportion_power(n: float, p1: float, p2: float, *, alpha: float = 0.05) -> float:
    """The power of that test with ``n`` orders per group (the inverse of ``two_proportion_n``)."""
    _rates(p1, p2)
    if not n > 0:
        raise ValueError(f"n must be positive, got {n!r}")
    z_alpha = NormalDist().inv_cdf(1.0 - _level("alpha", alpha) / 2.0)
    mean = (p1 + p2) / 2.0
    z = (math.sqrt(n) * abs(p1 - p2) - z_alpha * math.sqrt(2.0 * mean * (1.0 - mean))) / math.sqrt(
        p1 * (1.0 - p1) + p2 * (1.0 - p2)
    )
    return NormalDist().cdf(z)


def orders_per_variant(baseline: float, lift: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Reminded orders each variant needs before a test can show an absolute ``lift`` in the
    paid rate (0.05 = five points) over the shop's current ``baseline`` paid rate, with a
    two-sided 5% test and 80% power by default. Rounded up."""
    if not 0.0 <= baseline <= 1.0:
        raise ValueError(f"baseline must be a paid rate in 0..1, got {baseline!r}")
    if not lift or not math.isfinite(lift):
        raise ValueError(f"lift must be a non-zero rate difference such as 0.05, got {lift!r}")
    target = baseline + lift
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"baseline + lift must lie in 0..1, got {baseline!r} + {lift!r}")
    # A hair below each integer is that integer (10.000000000002 from rounding is 10, not 11).
    return math.ceil(two_proportion_n(baseline, target, alpha=alpha, power=power) - 1e-9)
