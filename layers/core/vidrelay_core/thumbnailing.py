"""After a video is stored: its thumbnail and spritesheet derived from the MP4 in S3 and kept beside it.

It runs on the video.completed event, in its own function, so the downloader never decodes. Whatever happens
here, the job stays completed: a video whose pictures cannot be made says why on its Video object
(`variants.error`), and a failure to reach S3 or DynamoDB is raised for Lambda's asynchronous retries (then the
function's on-failure queue). Safe to run twice: the keys are fixed, and the job takes its previews only once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .jobs import Job, Preview
from .obs import logger
from .previews import Picture, PreviewFailed, S3RangeReader, derive
from .store.jobs import JobStore

PREVIEW_VARIANTS: tuple[str, ...] = ("thumbnail", "spritesheet")
_EXTENSIONS = {"thumbnail": "webp", "spritesheet": "jpg"}


def preview_key(job: Job, variant: str) -> str:
    """Where a preview is kept: beside the MP4 (`videos/<tenant>/<id>.mp4`), so the videos/ expiry covers it."""
    return f"videos/{job.tenant}/{job.id}.{variant}.{_EXTENSIONS[variant]}"


class Thumbnailer:
    def __init__(self, jobs: JobStore, *, s3: Any, clock: Callable[[], float] = time.time) -> None:
        self.jobs = jobs
        self._s3 = s3
        self.clock = clock

    def derive(self, video_id: str) -> str:
        """Makes and records the job's previews; answers what happened (`derived`, `failed`, `skipped`, `gone`)."""
        job = self.jobs.get_job(video_id)
        if job is None or job.deleted_at is not None or job.state != "completed" or job.output is None:
            return "skipped"
        if job.previews or job.preview_error_code:
            return "skipped"  # a repeated event: done already
        output = job.output
        reader = S3RangeReader(self._s3, output.bucket, output.key, size=output.bytes)
        started = self.clock()
        try:
            derived = derive(reader, width=output.width, height=output.height, duration_s=output.duration_s)
        except PreviewFailed as exc:
            logger.warning("no previews", extra={"code": exc.code, "reason": exc.message})
            return self._record(job, (), error=exc)
        previews = (
            self._store(job, "thumbnail", derived.thumbnail),
            self._store(job, "spritesheet", derived.spritesheet),
        )
        logger.info(
            "previews derived",
            extra={
                "seconds": round(self.clock() - started, 3),
                "range_requests": reader.requests,
                "bytes_read": reader.bytes_fetched,
            },
        )
        return self._record(job, previews, error=None)

    def _store(self, job: Job, variant: str, picture: Picture) -> Preview:
        assert job.output is not None
        key = preview_key(job, variant)
        self._s3.put_object(
            Bucket=job.output.bucket,
            Key=key,
            Body=picture.data,
            ContentType=picture.content_type,
            Metadata={"video-id": job.id, "tenant": job.tenant, "variant": variant},
        )
        return Preview(
            variant=variant,  # type: ignore[arg-type]
            key=key,
            content_type=picture.content_type,
            bytes=len(picture.data),
            width=picture.width,
            height=picture.height,
            columns=picture.columns,
            rows=picture.rows,
            tile_width=picture.tile_width or picture.width,
            tile_height=picture.tile_height or picture.height,
            interval_s=picture.interval_s,
        )

    def _record(self, job: Job, previews: tuple[Preview, ...], *, error: PreviewFailed | None) -> str:
        recorded = self.jobs.record_previews(
            job.id,
            previews,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
        )
        if recorded:
            return "failed" if error else "derived"
        now = self.jobs.get_job(job.id)
        if now is None or now.deleted_at is not None:
            # Deleted while the pictures were made: nobody can see them, so they are not kept.
            self.remove(job)
            return "gone"
        return "skipped"  # another run recorded them first; its objects are the same keys

    def remove(self, job: Job) -> None:
        """Deletes the job's previews, whether or not they were made (a missing key is no error in S3)."""
        if job.output is None:
            return
        for variant in PREVIEW_VARIANTS:
            self._s3.delete_object(Bucket=job.output.bucket, Key=preview_key(job, variant))
