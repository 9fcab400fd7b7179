"""Repeated measurements as the report keeps them: every value, its median and its spread (min-max).

A figure measured once per round is a *stat*: ``{"median", "min", "max", "values"}``, the
values in round order. A figure derived from two stats (E(N), a fraction of a baseline, a
1M / 1k cost ratio) is the ratio of their medians, with the spread of the ratios taken
round by round: the rounds are interleaved, so the two figures of one round were measured
minutes apart under the same neighbours, and that pairing is the fair one.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Stat = dict[str, Any]


def summarise(values: Iterable[float | None], digits: int = 3) -> Stat | None:
    """The stat of ``values`` (Nones are runs that measured nothing); None when there is no value at all."""
    kept = [round(float(v), digits) for v in values if v is not None]
    if not kept:
        return None
    return {
        "median": round(statistics.median(kept), digits),
        "min": min(kept),
        "max": max(kept),
        "values": kept,
    }


def median(stat: Mapping[str, Any] | None) -> float | None:
    return None if stat is None else stat["median"]


def scaled(stat: Mapping[str, Any] | None, factor: float) -> Stat | None:
    """The stat of the same measurements multiplied by ``factor`` (N x a baseline)."""
    if stat is None:
        return None
    return summarise([v * factor for v in stat["values"]], digits=6)


def ratio(numerator: Mapping[str, Any] | None, denominator: Mapping[str, Any] | None) -> Stat | None:
    """median(numerator) / median(denominator), with the min-max of the round-by-round ratios.

    The values are paired by round; where one side has fewer rounds, only the pairs that
    exist count towards the spread (the median ratio still uses both medians).
    """
    if numerator is None or denominator is None or not denominator["median"]:
        return None
    pairs = [n / d for n, d in zip(numerator["values"], denominator["values"], strict=False) if d]
    value = numerator["median"] / denominator["median"]
    return {
        "median": round(value, 4),
        "min": round(min(pairs, default=value), 4),
        "max": round(max(pairs, default=value), 4),
        "values": [round(p, 4) for p in pairs],
    }


def is_stat(value: Any) -> bool:
    """``value`` has the shape of a stat: numbers in median/min/max, a non-empty list of numbers in values."""
    if not isinstance(value, Mapping):
        return False
    values = value.get("values")
    numbers = [value.get("median"), value.get("min"), value.get("max")]
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        return False
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in [*numbers, *values])


def median_of_maps(maps: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per key, the median over the maps that have it (CPU cores by container over the rounds)."""
    keys = sorted({key for m in maps for key in m})
    return {key: round(statistics.median([m[key] for m in maps if key in m]), 3) for key in keys}
