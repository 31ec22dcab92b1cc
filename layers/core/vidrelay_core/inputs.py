"""Reference inputs in S3: what a client gave, checked and prepared for the model, kept under
`inputs/<tenant>/<video>/` for the submit and its retries (the bucket's lifecycle removes them), and read back by
whoever submits later (the poller's retry, the streamer).

An `s3://` reference must be the tenant's own: an upload made with POST /v1/uploads, or a file under its inbox/
in the intake bucket. Anything else is a 400, whether it exists or not (another tenant's object must not be
probed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .contract import MAX_REFERENCE_BYTES_PER_JOB, CreateRequest, ReferenceInput
from .errors import InvalidRequest
from .jobs import Job, StoredReference
from .obs import logger

if TYPE_CHECKING:
    from .catalog import ModelSpec

Prepared = list[tuple[StoredReference, bytes]]

_MISSING = ("NoSuchKey", "404", "NotFound")
_DENIED = ("AccessDenied", "403")


class ReferenceMissing(Exception):
    """A stored reference input is gone for good (expired or deleted): the job can never be sent."""


class ReferenceInputs:
    def __init__(self, s3: Any, *, bucket: str, intake_bucket: str = "", allow_loopback_urls: bool = False) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._intake_bucket = intake_bucket
        self._allow_loopback = allow_loopback_urls

    def prepare(self, tenant: str, video_id: str, request: CreateRequest, spec: ModelSpec) -> Prepared:
        """Each reference fetched, checked and prepared for the model, then stored. Nothing is written for a job
        whose references fail: the ones stored so far are removed and the error (a 400) propagates."""
        if not request.references:
            return []
        from .references import prepare_reference  # Pillow, loaded only when a reference comes

        prepared: Prepared = []
        try:
            for number, given in enumerate(request.references, start=1):
                rule = spec.reference(given.field)
                assert rule is not None  # validated with the request
                reference = self._read_s3_reference(tenant, given, rule.max_bytes)
                ready = prepare_reference(
                    reference,
                    size=request.size,
                    allow_loopback=self._allow_loopback,
                    formats=rule.formats,
                    must_match_size=rule.must_match_size,
                    max_bytes=rule.max_bytes,
                )
                stored = StoredReference(
                    field=reference.field,
                    key=f"inputs/{tenant}/{video_id}/{number}-{reference.field}.{ready.extension}",
                    content_type=ready.content_type,
                    kind="video" if ready.content_type.startswith("video/") else "image",
                    bytes=len(ready.data),
                    width=ready.width,
                    height=ready.height,
                )
                self._s3.put_object(
                    Bucket=self._bucket,
                    Key=stored.key,
                    Body=ready.data,
                    ContentType=ready.content_type,
                    Metadata={"video-id": video_id, "tenant": tenant},
                )
                prepared.append((stored, ready.data))
                total = sum(len(data) for _, data in prepared)
                if total > MAX_REFERENCE_BYTES_PER_JOB:
                    raise InvalidRequest(
                        given.field,
                        f"{total} bytes",
                        message=f"Invalid value for '{given.field}': the references of one video add up to {total} "
                        f"bytes; at most {MAX_REFERENCE_BYTES_PER_JOB} are accepted.",
                        code="file_too_large",
                    )
        except BaseException:
            self.drop(tuple(stored for stored, _ in prepared))
            raise
        return prepared

    def load(self, job: Job) -> Prepared:
        """The job's prepared references from S3. Raises ReferenceMissing when one is gone for good; a transient
        S3 error propagates."""
        from botocore.exceptions import ClientError

        loaded: Prepared = []
        for stored in job.references:
            try:
                response = self._s3.get_object(Bucket=self._bucket, Key=stored.key)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                # A role that may list only under inputs/ is answered 403 for a missing key, not 404: the
                # listing tells a reference that is gone from a real refusal (which stays an error).
                if code in _MISSING or (code in _DENIED and not self._exists(stored.key)):
                    raise ReferenceMissing(stored.key) from None
                raise
            loaded.append((stored, bytes(response["Body"].read())))
        return loaded

    def _exists(self, key: str) -> bool:
        listed = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=key, MaxKeys=1).get("Contents", [])
        # The key itself sorts before every longer key that starts with it.
        return bool(listed) and listed[0].get("Key") == key

    def drop(self, references: Sequence[StoredReference]) -> None:
        """Removes reference inputs no job will use (best effort: the lifecycle rule catches what is left)."""
        for stored in references:
            try:
                self._s3.delete_object(Bucket=self._bucket, Key=stored.key)
            except Exception:
                logger.warning("could not delete an unused reference input", extra={"key": stored.key})

    def _read_s3_reference(self, tenant: str, reference: ReferenceInput, max_bytes: int) -> ReferenceInput:
        """An `s3://` reference becomes the object's bytes, if the object is the tenant's own."""
        url = reference.url
        if url is None or not url.startswith("s3://"):
            return reference
        param = f"{reference.field}.{'video_url' if reference.video_url else 'image_url'}"
        bucket, _, key = url[5:].partition("/")
        own = (bucket == self._bucket and key.startswith(f"uploads/{tenant}/")) or (
            bool(self._intake_bucket) and bucket == self._intake_bucket and key.startswith(f"inbox/{tenant}/")
        )
        allowed = f"an upload from POST /v1/uploads (s3://{self._bucket}/uploads/{tenant}/...)"
        if self._intake_bucket:
            allowed += f" or s3://{self._intake_bucket}/inbox/{tenant}/..."
        if not own:
            raise InvalidRequest(param, url, allowed, code="invalid_s3_uri")
        from botocore.exceptions import ClientError

        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
            if int(head["ContentLength"]) > max_bytes:
                raise InvalidRequest(
                    param,
                    url,
                    message=f"The object {url} is {head['ContentLength']} bytes; at most {max_bytes} are accepted.",
                    code="file_too_large",
                )
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            # Without s3:ListBucket S3 answers a missing key 403; either way it is nothing this tenant can use.
            if exc.response.get("Error", {}).get("Code") in (*_MISSING, *_DENIED):
                raise InvalidRequest(
                    param, url, message=f"No object at {url}: upload it first.", code="object_not_found"
                ) from None
            raise
        content_type = head.get("ContentType")
        return ReferenceInput(fit=reference.fit, data=bytes(body), content_type=content_type, field=reference.field)
