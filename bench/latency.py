"""Latency percentiles from the histograms load.js reports (bucket k: up to BASE * FACTOR**k ms)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

BASE_MS = 0.01  # the same constants as in load.js
FACTOR = 1.02


def merge(histograms: Iterable[Mapping[str, int]]) -> Counter[int]:
    """The sum of several {bucket: count} histograms (JSON keys are strings)."""
    total: Counter[int] = Counter()
    for histogram in histograms:
        for bucket, count in histogram.items():
            total[int(bucket)] += count
    return total


def percentile(histogram: Counter[int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile: at most 2 % above the true value."""
    samples = sum(histogram.values())
    if not samples:
        return None
    rank = max(1, math.ceil(q * samples))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return round(BASE_MS * FACTOR**bucket, 2)
    raise AssertionError("unreachable: the ranks add up to the samples")


def summary(histogram: Counter[int], maximum: float) -> dict[str, Any]:
    """p50 / p90 / p99 from the histogram, the exact maximum, and how many samples there were."""
    samples = sum(histogram.values())
    return {
        "p50": percentile(histogram, 0.5),
        "p90": percentile(histogram, 0.9),
        "p99": percentile(histogram, 0.99),
        "max": maximum if samples else None,
        "samples": samples,
    }
