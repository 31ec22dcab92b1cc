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


# --- the counted figures' arithmetic ------------------------------------------------------------------------


def test_pricing_reads_the_price_table() -> None:
    from collections import Counter

    from vidrelay.bench.calls import EMPTY_RECEIVE, Invocation, Snapshot
    from vidrelay.bench.pricing import price, prices

    usage = Snapshot(
        requests=Counter({("ApiFunction", "sns", "Publish"): 2, ("esm", "sqs", EMPTY_RECEIVE): 10}),
        units=Counter({("ApiFunction", "write"): 4.0}),
        items_read=Counter(),
        invocations={"ApiFunction": Invocation(count=1, seconds=0.5, gb_seconds=0.25, memory_mb=512)},
        cpu_seconds=Counter({"ApiFunction": 0.1}),
    )
    table = prices()
    # Billed time: the CPU stretched to a 512 MB share of a vCPU, two SNS answers, one billing step; at 512 MB.
    billed_gb_s = (0.1 * 1769 / 512 + 2 * 0.020 + 0.001) * 512 / 1024
    expected = (
        2 * table["sns"]["publish_usd"]
        + 4 * table["dynamodb"]["on_demand_write_request_unit_usd"]
        + table["lambda"]["request_usd"]
        + billed_gb_s * table["lambda"]["arm64_gb_second_usd"]
        + table["api_gateway"]["http_api_request_usd"]
    )
    cost = price(usage, include_empty_receives=False)
    assert cost["total_usd"] == pytest.approx(expected)
    # The local durations (0.25 GB-s) stay reported beside it, not priced into the total.
    assert cost["lambda_as_measured_usd"] == pytest.approx(
        table["lambda"]["request_usd"] + 0.25 * table["lambda"]["arm64_gb_second_usd"]
    )
    with_floor = price(usage)["total_usd"]
    assert with_floor == pytest.approx(expected + 10 * table["sqs"]["standard_request_usd"])


def test_importtime_tree_names_what_boto3_does_not_import() -> None:
    from vidrelay.bench.imports import heaviest_beyond, parse_importtime

    trace = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:      1000 |       1000 |     botocore",
            "import time:      2000 |       3000 |   boto3",
            "import time:       500 |        500 |       pydantic_core",
            "import time:      1500 |       2000 |     pydantic",
            "import time:       100 |       2100 |   vidrelay_core.config",
            "import time:       300 |       5400 | app",
        ]
    )
    rows = parse_importtime(trace)
    assert rows[-1] == {"module": "app", "depth": 0, "self_ms": 0.3, "cumulative_ms": 5.4}
    found = heaviest_beyond(rows, baseline={"boto3", "botocore"})
    assert [entry["module"] for entry in found] == ["vidrelay_core.config"]
    assert found[0]["cumulative_ms"] == 2.1 and found[0]["pulls_in"] == ["pydantic 2.0 ms"]
    assert found[0]["beyond_boto3_ms"] == 2.1


def test_import_time_beyond_boto3_leaves_out_what_boto3_loads() -> None:
    from vidrelay.bench.imports import heaviest_beyond, parse_importtime

    trace = "\n".join(
        [
            "import time:      3000 |       3000 |       boto3",
            "import time:       500 |       3500 |     vidrelay_core.store.codec",
            "import time:      1000 |       1000 |     httpx",
            "import time:       500 |       5000 |   vidrelay_core.delivery",
            "import time:       100 |       5100 | app",
        ]
    )
    found = heaviest_beyond(parse_importtime(trace), baseline={"boto3"})
    assert found[0]["module"] == "vidrelay_core.delivery"
    assert found[0]["cumulative_ms"] == 5.0 and found[0]["beyond_boto3_ms"] == 2.0
    assert found[0]["pulls_in"] == ["httpx 1.0 ms", "vidrelay_core.store.codec 0.5 ms"]


def test_sweep_sizes_parse() -> None:
    from vidrelay.bench import parse_sweep_sizes

    assert parse_sweep_sizes("100:1000, 10000:100000") == [(100, 1000), (10000, 100000)]
    assert parse_sweep_sizes("") == []
