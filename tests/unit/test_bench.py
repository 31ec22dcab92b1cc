"""The pure helpers of `make bench` (no timing is asserted anywhere)."""

from __future__ import annotations

import pytest

from vidrelay.bench import parse_proc_status, percentile, ratio

STATUS = """Name:\tpython
Umask:\t0022
State:\tR (running)
VmPeak:\t  420000 kB
VmHWM:\t  140736 kB
VmRSS:\t   75264 kB
Threads:\t3
voluntary_ctxt_switches:\t12
"""


def test_proc_status_fields_are_bytes() -> None:
    fields = parse_proc_status(STATUS)
    assert fields["VmHWM"] == 140736 * 1024
    assert fields["VmRSS"] == 75264 * 1024
    assert fields["VmPeak"] == 420000 * 1024
    assert "Threads" not in fields  # a count, not a kB field
    assert "voluntary_ctxt_switches" not in fields


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100, shuffled order must not matter
    assert percentile(list(reversed(values)), 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0


def test_percentile_of_one_value_and_bad_input() -> None:
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratio_guards_zero() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 0.0) is None
