"""What `vidrelay local` prints by default: a line per job step, and function warnings as one line each."""

from __future__ import annotations

import io
import logging

from aws_lambda_powertools import Logger

from vidrelay.local.console import describe, quiet_function_logs


def _event(kind: str, **video: object) -> dict[str, object]:
    return {"type": f"video.{kind}", "created_at": 0, "data": {"id": "video_1", "model": "sora-2", **video}}


def test_each_step_reads_after_the_one_before_it() -> None:
    lines = [
        describe(_event("queued", progress=0), None),
        describe(_event("in_progress", progress=40), "queued"),
        describe(_event("in_progress", progress=80), "in_progress"),
        describe(
            _event("completed", output={"width": 1280, "height": 720, "duration_s": 4.0, "bytes": 1}), "in_progress"
        ),
    ]
    assert [line.split("  ", 1)[1] for line in lines] == [
        "video_1  sora-2  queued",
        "video_1  sora-2  queued → in_progress 40%",
        "video_1  sora-2  in_progress 80%",
        "video_1  sora-2  in_progress → completed 1280x720 4.0s",
    ]


def test_a_failure_shows_its_code_and_message() -> None:
    line = describe(_event("failed", error={"code": "upstream_failed", "message": "content policy"}), "in_progress")
    assert line.endswith("video_1  sora-2  in_progress → failed upstream_failed: content policy")
    canceled = describe(_event("canceled", error={"code": "canceled", "message": "deleted"}), "queued")
    assert canceled.endswith("queued → canceled deleted")


def test_powertools_json_is_replaced_by_one_readable_line_per_warning() -> None:
    # Given a Powertools logger writing JSON to a stream
    json_out, readable = io.StringIO(), io.StringIO()
    # (its own name: the functions' shared "vidrelay" logger stays as it is for the other tests)
    logger = Logger(service="vidrelay-console-test", logger_handler=logging.StreamHandler(json_out))
    logger.setLevel("INFO")
    logger.info("before")
    assert '"message":"before"' in json_out.getvalue().replace(" ", "")
    json_out.truncate(0)
    json_out.seek(0)
    try:
        # When the local stack quiets it
        quiet_function_logs(readable, logger_name="vidrelay-console-test")
        logger.append_keys(function="poller")  # Powertools keeps working on its muted handler
        logger.info("sweep finished")
        logger.warning("could not renew the stream lease", extra={"video_id": "video_1"})
        # Then nothing is JSON, and the warning is one line
        assert json_out.getvalue() == ""
        assert readable.getvalue() == (
            "! warning vidrelay-console-test: could not renew the stream lease (video_id=video_1)\n"
        )
    finally:
        logging.getLogger("vidrelay-console-test").handlers.clear()
