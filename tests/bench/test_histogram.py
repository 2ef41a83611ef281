"""The benchmark's latency histogram: percentiles within its 1% buckets, merged across processes."""

from __future__ import annotations

import math
import random

import pytest

from bench.hist import Histogram


def exact_percentile(values: list[float], p: float) -> float:
    ranked = sorted(values)
    return ranked[max(1, math.ceil(len(ranked) * p / 100)) - 1]


@pytest.mark.parametrize("p", [50, 90, 99, 99.9])
def test_a_percentile_is_within_one_percent_of_the_exact_one(p: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-7, 1.2) for _ in range(20_000)]  # around a millisecond, long tail
    hist = Histogram()
    for value in values:
        hist.add(value)
    exact = exact_percentile(values, p)
    assert hist.percentile(p) == pytest.approx(exact, rel=0.0051)  # a bucket's midpoint: within half of 1%


def test_merging_equals_adding_everything_to_one_histogram() -> None:
    rng = random.Random(11)
    values = [rng.expovariate(500) for _ in range(5_000)]
    whole, first, second = Histogram(), Histogram(), Histogram()
    for index, value in enumerate(values):
        whole.add(value)
        (first if index % 3 else second).add(value)
    first.merge(second)
    assert (first.buckets, first.count, first.max) == (whole.buckets, whole.count, whole.max)
    assert first.total == pytest.approx(whole.total)
    assert [first.percentile(p) for p in (50, 99, 99.9)] == [whole.percentile(p) for p in (50, 99, 99.9)]


def test_a_histogram_survives_its_trip_between_processes() -> None:
    hist = Histogram()
    for value in (0.0005, 0.002, 0.002, 0.04, 5e-7):
        hist.add(value)
    copy = Histogram.from_json(hist.to_json())
    assert (copy.buckets, copy.count, copy.max, copy.total) == (hist.buckets, hist.count, hist.max, hist.total)


def test_extremes() -> None:
    empty = Histogram()
    assert empty.percentile(50) is None and empty.mean() is None
    one = Histogram()
    one.add(0.003)
    only = one.percentile(99.9)
    assert only == pytest.approx(0.003, rel=0.01)
    assert only <= 0.003  # a bucket's midpoint is never reported above the largest value seen
    assert one.mean() == 0.003
