"""The S3 intake: videos from files dropped into the intake bucket (SPEC §7).

A tenant uploads `inbox/<tenant>/<name>.(png|jpg|jpeg|webp)` and/or `inbox/<tenant>/<name>.json`. S3 tells the
intake queue about every created object; each message is handled here, and so is each terminal event of an intake
job (a second queue on the video-events topic), which writes the result back to `outbox/<tenant>/<name>.*`.

Which upload starts the job (the same answer whatever order the two files come in, and however often S3 repeats
an event):
- an image whose metadata names at least one create field (`prompt`, `model`, `seconds`, `size`, `webhook-url`…)
  carries its own instructions: it starts at once, and a sidecar of the same name is not read;
- an image without such metadata waits for `<name>.json`, and the two make one image-to-video job;
- a sidecar with no image waits `settle_s` from its upload (its message comes back later), then starts a
  text-to-video job on its own. Which way a sidecar version was used is recorded with a conditional write
  (IntakeClaims.claim_sidecar), so a late image cannot make a second job from it: it gets `<name>.error.json`.

Exactly once: the job is created with an Idempotency-Key derived from the bucket, key and ETag of every input
(and the instruction metadata, which the ETag does not cover), through the same `CreateVideo.create_from_fields` the API
uses. A duplicate event, a replayed upload or a second worker racing the first all land on the same job; a worker
that died anywhere is simply run again. A rejected input (what the API would answer with a 4xx) gets
`outbox/<tenant>/<name>.error.json` holding the API's error object, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.header import decode_header, make_header
from typing import Any
from urllib.parse import quote, unquote_plus

from .bodies import MAX_BODY_BYTES, UploadedFile, parse_body
from .config import Settings
from .contract import KNOWN_FIELDS, Video
from .creation import CreateVideo
from .errors import InvalidRequest, JobNotFound, PayloadTooLarge, RateLimited, Unauthorized, VidrelayError
from .jobs import IntakeOrigin, Job
from .obs import logger
from .store.intake import IntakeClaims
from .store.jobs import JobStore
from .store.tenants import TenantStore

INBOX = "inbox/"
OUTBOX = "outbox/"
IMAGE_TYPES: dict[str, str] = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
SIDECAR = "json"
# As much as an image fetched from a URL may weigh (references.MAX_FETCH_BYTES; that module loads Pillow, so the
# number is repeated here): an upload to S3 is not bound by API Gateway's 6 MB.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# A rate-limited upload comes back after the window reopens, spread over a few seconds so a burst does not
# return all at once.
RATE_LIMIT_JITTER_S = 10.0


@dataclass(frozen=True)
class ObjectRef:
    """One created object, as an S3 event names it (key already URL-decoded, ETag without quotes)."""

    bucket: str
    key: str
    etag: str


@dataclass(frozen=True)
class InboxKey:
    tenant: str
    name: str  # the path under inbox/<tenant>/ without its extension (it may hold folders)
    extension: str  # lower case; "" when there is none

    @property
    def kind(self) -> str:
        if self.extension in IMAGE_TYPES:
            return "image"
        return "sidecar" if self.extension == SIDECAR else "other"

    def outbox(self, suffix: str) -> str:
        return f"{OUTBOX}{self.tenant}/{self.name}{suffix}"


@dataclass(frozen=True)
class Outcome:
    """What one object or event came to. `retry_after_s`: the message must come back after that long."""

    result: str
    video_id: str | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class _Stored:
    """An inbox object as found in the bucket now (which may be newer than the event that named it)."""

    key: str
    kind: str  # "image" or "sidecar"
    etag: str
    size: int
    last_modified: float


def parse_inbox_key(key: str) -> InboxKey | None:
    """`inbox/<tenant>/<name>.<ext>`; None for anything that names no tenant and file (a folder marker)."""
    if not key.startswith(INBOX):
        return None
    tenant, slash, path = key[len(INBOX) :].partition("/")
    if not tenant or not slash or not path or path.endswith("/"):
        return None
    stem, dot, extension = path.rpartition(".")
    if not dot or not stem or stem.endswith("/") or "/" in extension:
        return InboxKey(tenant, path, "")
    extension = extension.lower()
    if extension not in IMAGE_TYPES and extension != SIDECAR:
        # Not an input: its error file is named after the whole file name (notes.txt -> notes.txt.error.json).
        return InboxKey(tenant, path, extension)
    return InboxKey(tenant, stem, extension)


def s3_objects(body: dict[str, Any]) -> list[ObjectRef]:
    """The created objects of an S3 event notification. S3 URL-encodes keys in events (a space is `+`)."""
    from aws_lambda_powertools.utilities.data_classes.s3_event import S3Event

    refs: list[ObjectRef] = []
    for record in S3Event(body).records:
        if not record.event_name.startswith("ObjectCreated"):
            continue
        refs.append(
            ObjectRef(
                bucket=record.s3.bucket.name,
                key=unquote_plus(record.s3.get_object.key),
                etag=record.s3.get_object.etag.strip('"'),
            )
        )
    return refs


def metadata_fields(metadata: dict[str, str]) -> dict[str, str]:
    """Object metadata as create fields: `webhook-url` is `webhook_url` (S3 lower-cases metadata names, and
    hyphens are what tools write). Names that are no create field keep their own, so the API's rules reject them
    by name, as they would a typo in a request. Values that S3 had to keep RFC 2047-encoded (non-ASCII) are
    decoded."""
    names = _field_names()
    return {names.get(_normal(key), key): _decoded(value) for key, value in metadata.items()}


def has_instructions(metadata: dict[str, str]) -> bool:
    names = _field_names()
    return any(_normal(key) in names for key in metadata)


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


def _field_names() -> dict[str, str]:
    # Read at each call: fields the API learns are fields the intake understands.
    return {_normal(field): field for field in KNOWN_FIELDS}


def _decoded(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeDecodeError):
        return value


def idempotency_key(bucket: str, *parts: str) -> str:
    digest = hashlib.sha256("\n".join((bucket, *parts)).encode()).hexdigest()
    return f"intake-{digest}"


class _Superseded(Exception):
    """The object changed or went away since its event: the newer version's own event will handle it."""


class Intake:
    def __init__(
        self,
        settings: Settings,
        *,
        create: CreateVideo,
        jobs: JobStore,
        tenants: TenantStore,
        claims: IntakeClaims,
        s3: Any,
        settle_s: float | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.create = create
        self.jobs = jobs
        self.tenants = tenants
        self.claims = claims
        self.s3 = s3
        self.settle_s = settings.intake_settle_s if settle_s is None else settle_s
        self.clock = clock
        self.rng = rng or random.Random()

    # -- messages ---------------------------------------------------------------------------------------------

    def handle_message(self, body: dict[str, Any]) -> list[Outcome]:
        """One SQS message of either intake queue (SNS envelope removed: queues.unwrap_sns): an S3 event
        notification, or a terminal video event."""
        if body.get("object") == "event" and str(body.get("type", "")).startswith("video."):
            return [self.write_result(body)]
        if body.get("Event") == "s3:TestEvent":
            return [Outcome("test_event")]  # S3 sends one when the notification is configured
        if not isinstance(body.get("Records"), list):
            logger.warning("intake message is neither an S3 event nor a video event", extra={"keys": sorted(body)})
            return [Outcome("ignored")]
        return [self.handle_object(ref) for ref in s3_objects(body)]

    # -- inputs -----------------------------------------------------------------------------------------------

    def handle_object(self, ref: ObjectRef) -> Outcome:
        inbox = parse_inbox_key(ref.key)
        if inbox is None:
            logger.warning("object outside inbox/<tenant>/ ignored", extra={"key": ref.key})
            return Outcome("ignored")
        try:
            if not self.tenants.tenant_exists(inbox.tenant):
                raise Unauthorized(
                    f"No vidrelay tenant is called '{inbox.tenant}', so nothing under {INBOX}{inbox.tenant}/ is "
                    "turned into a video. Upload into the folder of your own tenant.",
                    param="key",
                    code="unknown_tenant",
                )
            if inbox.kind == "other":
                raise InvalidRequest(
                    "key",
                    ref.key,
                    message=f"Invalid file type: '{ref.key}' is neither an image "
                    f"({', '.join('.' + e for e in IMAGE_TYPES)}) nor a '.json' sidecar.",
                    code="unsupported_file_type",
                )
            return self._evaluate(ref, inbox)
        except _Superseded:
            return Outcome("superseded")
        except RateLimited as exc:
            # Not a rejection: the same message tries again once the tenant's window has room.
            return Outcome("rate_limited", retry_after_s=exc.retry_after_s + self.rng.uniform(0, RATE_LIMIT_JITTER_S))
        except JobNotFound:
            return Outcome("deleted")  # a replay of an upload whose job the tenant has deleted since
        except VidrelayError as exc:
            self._write_error(ref, inbox, exc)
            return Outcome("rejected")

    def _evaluate(self, ref: ObjectRef, inbox: InboxKey) -> Outcome:
        for _ in range(3):
            found = self._inputs(ref.bucket, inbox)
            trigger = found.get(ref.key)
            if trigger is None or trigger.etag != ref.etag:
                raise _Superseded
            # The image that was uploaded, or (for a sidecar) the newest of its name; and the other way round.
            image = trigger if trigger.kind == "image" else _newest(found, "image")
            sidecar = trigger if trigger.kind == "sidecar" else _newest(found, "sidecar")
            if image is None:
                return self._decide(ref, inbox, image=None, metadata={}, sidecar=sidecar)
            try:
                metadata: dict[str, str] = self._head(ref.bucket, image).get("Metadata", {})
            except _Superseded:
                if image is trigger:
                    raise
                continue  # the sidecar's image went away or changed while we looked: look again
            return self._decide(ref, inbox, image=image, metadata=metadata, sidecar=sidecar)
        raise RuntimeError(f"the inputs of {ref.key} kept changing while they were read")  # the message comes back

    def _decide(
        self,
        ref: ObjectRef,
        inbox: InboxKey,
        *,
        image: _Stored | None,
        metadata: dict[str, str],
        sidecar: _Stored | None,
    ) -> Outcome:
        if image is not None and has_instructions(metadata):
            return self._start(ref.bucket, inbox, image=image, metadata=metadata, sidecar=None)
        if image is not None and sidecar is not None:
            use = self.claims.claim_sidecar(ref.bucket, sidecar.key, sidecar.etag, "pair")
            if use == "pair":
                return self._start(ref.bucket, inbox, image=image, metadata=None, sidecar=sidecar)
            if sidecar.key == ref.key:
                # This very message claimed it alone before (and died before creating the job): finish that.
                return self._start(ref.bucket, inbox, image=None, metadata=None, sidecar=sidecar)
            raise InvalidRequest(
                "input_reference",
                image.key,
                message=f"The image '{image.key}' came after its sidecar '{sidecar.key}' had waited "
                f"{self.settle_s:g} s for it and started a text-to-video job on its own. Upload the sidecar "
                "again to make an image-to-video job of this image.",
                code="sidecar_already_used",
            )
        if image is not None:
            return Outcome("waiting_for_sidecar")
        assert sidecar is not None  # the trigger is one of the two
        used = self.claims.sidecar_use(ref.bucket, sidecar.key, sidecar.etag)
        if used is None:
            waited = self.clock() - sidecar.last_modified
            if waited < self.settle_s:
                # Its image may be on the way: look again when the settle time is over.
                return Outcome("settling", retry_after_s=self.settle_s - waited)
            used = self.claims.claim_sidecar(ref.bucket, sidecar.key, sidecar.etag, "text")
        if used == "pair":
            return Outcome("paired")  # its image came in time and the pair's job exists (the image has gone since)
        return self._start(ref.bucket, inbox, image=None, metadata=None, sidecar=sidecar)

    def _inputs(self, bucket: str, inbox: InboxKey) -> dict[str, _Stored]:
        """The name's images and sidecars in the bucket now, by key (one listing; it also proves existence)."""
        prefix = f"{INBOX}{inbox.tenant}/{inbox.name}."
        found: dict[str, _Stored] = {}
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = self.s3.list_objects_v2(**kwargs)
            for item in page.get("Contents", []):
                key = str(item["Key"])
                rest = key[len(prefix) :]
                if "." in rest or "/" in rest or rest.lower() not in (*IMAGE_TYPES, SIDECAR):
                    continue  # another name that only starts like this one (`cat.v2.png` for `cat`)
                found[key] = _Stored(
                    key,
                    "sidecar" if rest.lower() == SIDECAR else "image",
                    str(item["ETag"]).strip('"'),
                    int(item["Size"]),
                    item["LastModified"].timestamp(),
                )
            if not page.get("IsTruncated"):
                return found
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _head(self, bucket: str, stored: _Stored) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.s3.head_object(Bucket=bucket, Key=stored.key, IfMatch=f'"{stored.etag}"')
        except ClientError as exc:
            if _status(exc) in (404, 412):
                raise _Superseded from None
            raise
        return head

    def _read(self, bucket: str, stored: _Stored, limit: int) -> bytes:
        """The object's bytes, if it is still the version that was listed; at most `limit` + 1 of them."""
        from botocore.exceptions import ClientError

        try:
            response = self.s3.get_object(Bucket=bucket, Key=stored.key, IfMatch=f'"{stored.etag}"')
        except ClientError as exc:
            if _status(exc) in (404, 412):
                raise _Superseded from None
            raise
        body = response["Body"]
        try:
            return bytes(body.read(limit + 1))
        finally:
            body.close()

    def _start(
        self,
        bucket: str,
        inbox: InboxKey,
        *,
        image: _Stored | None,
        metadata: dict[str, str] | None,
        sidecar: _Stored | None,
    ) -> Outcome:
        """Creates the job exactly as `POST /v1/videos` would, with the image as the `input_reference` file."""
        identity: list[str] = []
        fields: dict[str, Any] = {}
        multipart = False
        if sidecar is not None:
            identity += [sidecar.key, sidecar.etag]
            data = self._read(bucket, sidecar, MAX_BODY_BYTES) if sidecar.size <= MAX_BODY_BYTES else b""
            if sidecar.size > MAX_BODY_BYTES or len(data) > MAX_BODY_BYTES:
                raise PayloadTooLarge(
                    f"The sidecar '{sidecar.key}' is {sidecar.size} bytes; at most {MAX_BODY_BYTES} are accepted.",
                    param="body",
                )
            # Read exactly as a JSON request body is: the same errors for the same mistakes.
            fields = parse_body("application/json", data).fields
        if metadata is not None:
            # Metadata values are strings, as multipart form fields are, and are read by the same rules.
            fields, multipart = metadata_fields(metadata), True
            identity += [_metadata_digest(metadata)]
        files: dict[str, UploadedFile] = {}
        if image is not None:
            identity += [image.key, image.etag]
            if "input_reference" in fields:
                raise InvalidRequest(
                    "input_reference",
                    message=f"Invalid 'input_reference': the uploaded image '{image.key}' is the reference of this "
                    "job, so the instructions must not name another one.",
                    code="unsupported_parameter",
                )
            if image.size > MAX_IMAGE_BYTES:
                raise _image_too_large(image)
            data = self._read(bucket, image, MAX_IMAGE_BYTES)
            if len(data) > MAX_IMAGE_BYTES:
                raise _image_too_large(image)
            extension = image.key.rpartition(".")[2].lower()
            files["input_reference"] = UploadedFile(image.key.rpartition("/")[2], IMAGE_TYPES[extension], data)
        job = self.create.create_from_fields(
            inbox.tenant,
            fields,
            files,
            multipart=multipart,
            idempotency_key=idempotency_key(bucket, *identity),
            intake=IntakeOrigin(bucket=bucket, name=inbox.name),
        )
        logger.info("intake job", extra={"video_id": job.id, "intake_name": inbox.name, "tenant": inbox.tenant})
        return Outcome("started", video_id=job.id)

    def _write_error(self, ref: ObjectRef, inbox: InboxKey, error: VidrelayError) -> None:
        """`<name>.error.json`: the error object the API would have answered with. Rewritten as it was by a
        duplicate message."""
        self.s3.put_object(
            Bucket=ref.bucket,
            Key=inbox.outbox(".error.json"),
            Body=json.dumps(error.to_body(), indent=2).encode(),
            ContentType="application/json",
            Metadata={"source-key": quote(ref.key), "source-etag": ref.etag, "status": str(error.status_code)},
        )
        logger.info("intake input rejected", extra={"key": ref.key, "code": error.code, "param": error.param})

    # -- results ----------------------------------------------------------------------------------------------

    def write_result(self, event: dict[str, Any]) -> Outcome:
        """A finished intake job's `outbox/<tenant>/<name>.mp4` (a completed one only) and `<name>.json` (the
        final Video object). Safe twice: the same keys are written again."""
        video_id = str(event["data"]["id"])
        job = self.jobs.get_job(video_id)
        if job is None or job.intake is None or not job.is_terminal:
            return Outcome("ignored", video_id=video_id)
        if job.deleted_at is not None:
            return Outcome("deleted", video_id=video_id)  # the tenant deleted it through the API meanwhile
        bucket, base = job.intake.bucket, f"{OUTBOX}{job.tenant}/{job.intake.name}"
        if self._newer_result_exists(bucket, f"{base}.json", job):
            return Outcome("superseded", video_id=video_id)
        metadata = {"video-id": job.id, "video-created-at": repr(job.created_at)}
        if job.state == "completed" and job.output is not None:
            from botocore.exceptions import ClientError

            try:
                # A server-side copy: the bytes the downloader checked (an MP4, hashed) never pass through here.
                self.s3.copy_object(
                    Bucket=bucket,
                    Key=f"{base}.mp4",
                    CopySource={"Bucket": job.output.bucket, "Key": job.output.key},
                    ContentType="video/mp4",
                    MetadataDirective="REPLACE",
                    Metadata=metadata,
                )
            except ClientError as exc:
                current = self.jobs.get_job(video_id)
                # The function may not list the results bucket, so a source that is gone answers 403 as well.
                if _status(exc) in (403, 404) and (current is None or current.deleted_at is not None):
                    return Outcome("deleted", video_id=video_id)
                raise
        video = Video.from_job(job, retention_days=self.settings.retention_days).model_dump(mode="json")
        self.s3.put_object(
            Bucket=bucket,
            Key=f"{base}.json",
            Body=json.dumps(video, indent=2).encode(),
            ContentType="application/json",
            Metadata=metadata,
        )
        return Outcome(f"written_{job.state}", video_id=video_id)

    def _newer_result_exists(self, bucket: str, key: str, job: Job) -> bool:
        """Two uploads of one name make two jobs; the outbox keeps the result of the newer one, whichever
        finishes last."""
        from botocore.exceptions import ClientError

        # Listed first: the function may list only under inbox/ and outbox/, and S3 answers such a lister 403
        # (not 404) for a missing key, which must stay an error when it is a real refusal.
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
        if not listed or listed[0].get("Key") != key:  # the key itself sorts before every longer one
            return False
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _status(exc) == 404:
                return False
            raise
        metadata = head.get("Metadata", {})
        try:
            other_created_at = float(metadata.get("video-created-at", "0"))
        except ValueError:
            return False
        return metadata.get("video-id") != job.id and other_created_at > job.created_at


def _newest(found: dict[str, _Stored], kind: str) -> _Stored | None:
    return max((o for o in found.values() if o.kind == kind), key=lambda o: (o.last_modified, o.key), default=None)


def _metadata_digest(metadata: dict[str, str]) -> str:
    # The ETag covers only the bytes: the same image uploaded again with other instructions is another job.
    return hashlib.sha256(json.dumps(sorted(metadata.items())).encode()).hexdigest()


def _status(exc: Any) -> int:
    response = getattr(exc, "response", {}) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if isinstance(status, int):
        return status
    code = str(response.get("Error", {}).get("Code", ""))
    return {"NoSuchKey": 404, "NotFound": 404, "404": 404, "PreconditionFailed": 412, "412": 412}.get(code, 0)


def _image_too_large(image: _Stored) -> InvalidRequest:
    return InvalidRequest(
        "input_reference",
        message=f"The image '{image.key}' is {image.size} bytes; at most {MAX_IMAGE_BYTES} bytes "
        f"({MAX_IMAGE_BYTES // (1024 * 1024)} MiB) are accepted.",
        code="image_too_large",
    )
