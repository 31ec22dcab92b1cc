"""Every lease outlasts the longest its work can take, with the settings `vidrelay local` uses and with the
template's (the cloud). A lease shorter than its work declares a live worker dead: a slow but successful submit
ends `upstream_submit_unknown`, a long download is sent again until the job fails.

The bounds come from the timeouts of the work itself (upstream/base.py, upstream/chat.py, webhooks.py,
transfer.py) and the leases from the same settings the functions read, so changing either side is checked here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vidrelay_core import delivery, queues
from vidrelay_core.config import Settings
from vidrelay_core.streaming import STREAM_RENEWALS_PER_LEASE
from vidrelay_core.submission import FAILOVER_BUDGET_S
from vidrelay_core.transfer import FINISH_ALLOWANCE_S, overrun_s
from vidrelay_core.upstream.base import longest_submit_s
from vidrelay_core.upstream.chat import longest_stream_silence_s
from vidrelay_core.webhooks import longest_attempt_s

from tests.integration.conftest import HARNESS_SETTINGS
from vidrelay.local.stack import LOCAL_TIMING_ENV
from vidrelay.local.template import FunctionSpec, Template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Template.load(ROOT / "template.yaml")
FUNCTIONS = {fn.logical_id: fn for fn in TEMPLATE.functions()}


def plain_env(fn: FunctionSpec) -> dict[str, str]:
    """The function's environment as deployed, without the values only CloudFormation can resolve (resource
    names, parameters): no lease is set through those."""
    return {name: str(value) for name, value in fn.environment.items() if isinstance(value, str | int | float)}


def settings(where: str, fn: FunctionSpec) -> Settings:
    env = plain_env(fn)
    if where == "local":
        env.update(LOCAL_TIMING_ENV)  # what stack.py sets for every function
    elif where == "integration":
        # tests/integration: the local settings on a test clock (long leases cost nothing there).
        env.update(HARNESS_SETTINGS)
    # The names CloudFormation would resolve do not matter for leases: placeholders stand in for them.
    required = {"VIDRELAY_JOBS_TABLE": "t", "VIDRELAY_RESULTS_BUCKET": "b", "VIDRELAY_EVENTS_TOPIC_ARN": "arn"}
    return Settings.from_env({**required, **env})


def queue_visibility_s(queue: str) -> float:
    return float(TEMPLATE.resources[queue]["Properties"]["VisibilityTimeout"])


def sqs_event(fn: FunctionSpec) -> tuple[str, int]:
    (event,) = [e for e in fn.events if e.kind == "sqs"]
    assert event.queue is not None and event.batch_size is not None
    return event.queue, event.batch_size


WHERE = ["local", "integration", "cloud"]


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("function", ["ApiFunction", "PollerFunction"])
def test_the_submit_lease_outlasts_every_try_of_a_submit(where: str, function: str) -> None:
    # The api and the poller submit; the poller declares a submit lost once its lease ran out.
    timing = settings(where, FUNCTIONS[function])
    assert timing.submit_lease_s > longest_submit_s(FAILOVER_BUDGET_S)


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("function", ["StreamerFunction", "PollerFunction"])
def test_the_stream_lease_outlasts_every_silence_of_a_live_stream(where: str, function: str) -> None:
    # The streamer holds and renews it; the poller declares a stream lost once it ran out.
    lease_s = settings(where, FUNCTIONS[function]).stream_lease_s
    silence = longest_stream_silence_s(FAILOVER_BUDGET_S, lease_s=lease_s, renewals_per_lease=STREAM_RENEWALS_PER_LEASE)
    assert lease_s > silence


@pytest.mark.parametrize("where", WHERE)
def test_the_download_lease_and_visibility_outlast_a_download(where: str) -> None:
    downloader = FUNCTIONS["DownloaderFunction"]
    queue, batch = sqs_event(downloader)
    # A download stops by itself in time to end within its invocation (transfer.download_deadline), locally as
    # in Lambda; one message per invocation, so the function's timeout bounds one download.
    assert batch == 1
    assert overrun_s() + FINISH_ALLOWANCE_S < downloader.timeout_s / 2  # most of the invocation moves bytes
    # The poller sends the download again once the lease ran out; SQS once the visibility timeout did.
    assert settings(where, FUNCTIONS["PollerFunction"]).download_lease_s > downloader.timeout_s
    assert queue_visibility_s(queue) > downloader.timeout_s


def test_the_delivery_lease_outlasts_an_attempt_and_a_batch_fits_the_notifier() -> None:
    # Not a setting: the same lease locally and in the cloud.
    notifier = FUNCTIONS["NotifierFunction"]
    queue, batch = sqs_event(notifier)
    lease_s = delivery.LEASE_S
    assert lease_s > longest_attempt_s()
    # A batch's records run side by side, and an event's first attempts to its targets too: a batch whose every
    # delivery takes its longest still ends before the timeout cuts an attempt short.
    assert batch <= queues.BATCH_WORKERS
    assert notifier.timeout_s > 2 * longest_attempt_s()
    # And a live invocation keeps its leases to the end: the lease outlasts the whole invocation.
    assert lease_s > notifier.timeout_s
    assert queue_visibility_s(queue) > notifier.timeout_s
