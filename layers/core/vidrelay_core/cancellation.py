"""Deleting a video: canceled first if still in flight, then its stored MP4, previews and reference inputs removed.

The seeds offer no upstream cancel; the upstream task just runs out and is never fetched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .errors import StaleJob
from .jobs import IN_FLIGHT, Job
from .lifecycle import Lifecycle
from .queries import VideoQueries
from .thumbnailing import PREVIEW_VARIANTS, preview_key


class DeleteVideo:
    def __init__(
        self,
        lifecycle: Lifecycle,
        queries: VideoQueries,
        *,
        s3: Any,
        inputs_bucket: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lifecycle = lifecycle
        self.queries = queries
        self._s3 = s3
        self._inputs_bucket = inputs_bucket
        self.clock = clock

    def delete(self, tenant: str, video_id: str) -> Job:
        job = self.queries.get(tenant, video_id)
        now = self.clock()
        while True:
            try:
                if job.state in IN_FLIGHT:
                    job = self.lifecycle.transition(
                        job,
                        "canceled",
                        deleted_at=now,
                        error_code="canceled",
                        error_message="The video was deleted before it finished.",
                    )
                else:
                    job = self.lifecycle.save(job, job.with_changes(deleted_at=now))
                break
            except StaleJob:
                job = self.queries.get(tenant, video_id)
        if job.output is not None:
            self._s3.delete_object(Bucket=job.output.bucket, Key=job.output.key)
            # By their fixed keys, not the record: the thumbnailer may be storing them this very moment.
            for variant in PREVIEW_VARIANTS:
                self._s3.delete_object(Bucket=job.output.bucket, Key=preview_key(job, variant))
        for stored in job.references:
            self._s3.delete_object(Bucket=self._inputs_bucket, Key=stored.key)
        return job
