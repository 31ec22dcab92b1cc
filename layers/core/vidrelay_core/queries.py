"""What the API reads: one video, a page of videos, the usage, a presigned link to a stored file.

Another tenant's video is indistinguishable from a missing one (404), and a deleted one is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest, JobNotFound, NotReady
from .jobs import Job
from .store.counters import CounterStore, UsageRow
from .store.jobs import JobStore


@dataclass(frozen=True)
class Usage:
    first_day: str
    last_day: str
    rows: list[UsageRow]

    @property
    def total_usd(self) -> float:
        return round(sum(r.estimated_usd for r in self.rows), 4)

    @property
    def jobs(self) -> int:
        return sum(r.jobs for r in self.rows)


def _day(field: str, value: str) -> str:
    try:
        return time.strftime("%Y-%m-%d", time.strptime(value, "%Y-%m-%d"))
    except ValueError:
        raise InvalidRequest(field, value, "a UTC day as YYYY-MM-DD") from None


class VideoQueries:
    def __init__(
        self,
        jobs: JobStore,
        counters: CounterStore,
        *,
        s3: Any,
        presign_ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jobs = jobs
        self.counters = counters
        self._s3 = s3
        self._presign_ttl_s = presign_ttl_s
        self.clock = clock

    def get(self, tenant: str, video_id: str) -> Job:
        job = self.jobs.get_job(video_id) if video_id.startswith("video_") else None
        if job is None or job.tenant != tenant or job.deleted_at is not None:
            raise JobNotFound(video_id)
        return job

    def list(self, tenant: str, *, after: str | None, limit: int, order: str) -> tuple[list[Job], bool]:
        cursor = self.get(tenant, after) if after else None
        return self.jobs.list_jobs(tenant, after=cursor, limit=limit, newest_first=order == "desc")

    def usage(self, tenant: str, first_day: str | None, last_day: str | None) -> Usage:
        """The tenant's estimated spend per day and model between two UTC days (default: this month so far)."""
        today = time.strftime("%Y-%m-%d", time.gmtime(self.clock()))
        first = _day("from", first_day) if first_day else today[:8] + "01"
        last = _day("to", last_day) if last_day else today
        if first > last:
            raise InvalidRequest("from", first, f"a day on or before 'to' ({last})")
        rows = sorted(self.counters.usage(tenant, first, last), key=lambda r: (r.day, r.model))
        return Usage(first, last, rows)

    def content_url(self, tenant: str, video_id: str, variant: str) -> str:
        """A short-lived presigned GET of the stored MP4, or of its thumbnail or spritesheet."""
        job = self.get(tenant, video_id)
        if job.state != "completed" or job.output is None:
            raise NotReady(
                f"Video '{video_id}' is {job.public_status}; content is available once it is completed.",
                param="video_id",
            )
        key, content_type, filename = job.output.key, "video/mp4", f"{job.id}.mp4"
        if variant != "video":
            preview = job.preview(variant)
            if preview is None and job.preview_error_code:
                raise InvalidRequest(
                    "variant",
                    variant,
                    f'"video" for this video: no {variant} could be derived ({job.preview_error_message})',
                    code="variant_not_available",
                )
            if preview is None:
                raise NotReady(
                    f"The {variant} of video '{video_id}' is still being made from the stored MP4; "
                    "try again in a few seconds.",
                    param="variant",
                )
            key, content_type = preview.key, preview.content_type
            filename = f"{job.id}.{variant}.{preview.key.rsplit('.', 1)[-1]}"
        return str(
            self._s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": job.output.bucket,
                    "Key": key,
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                },
                ExpiresIn=self._presign_ttl_s,
            )
        )
