"""poller function: one scheduled invocation a minute that keeps sweeping for most of that minute."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.obs import lambda_entry, logger, metrics
from vidrelay_core.wiring import components

# Leave time to finish the last sweep's checks before Lambda's timeout.
SAFETY_MARGIN_S = 15.0


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parts = components()
    remaining = context.get_remaining_time_in_millis() / 1000.0
    budget = min(parts.settings.poller_sweep_seconds, max(0.0, remaining - SAFETY_MARGIN_S))
    stats = parts.poller.sweep(until=time.time() + budget, tick_s=parts.settings.poller_tick_s)
    metrics.add_metric(name="JobsChecked", unit=MetricUnit.Count, value=stats.checked)
    metrics.add_metric(name="CheckErrors", unit=MetricUnit.Count, value=stats.errors)
    if stats.oldest_inflight_age_s is not None:
        # template.yaml's StuckJobsAlarm watches its maximum; no job in flight is no data point, not zero.
        metrics.add_metric(
            name="OldestInFlightJobAgeSeconds", unit=MetricUnit.Seconds, value=stats.oldest_inflight_age_s
        )
    logger.info("sweep finished", extra=asdict(stats))
    return asdict(stats)
