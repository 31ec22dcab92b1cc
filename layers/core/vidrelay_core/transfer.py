"""HTTP stream → S3, memory bounded whatever the size.

The body is cut into fixed-size parts as it arrives; each full part is handed to a small pool of uploaders
and the reader takes an upload slot before it copies a part off its buffer, so at most `max_in_flight` parts
plus the buffer (under a part and a read chunk) are live at once: about 5.5 parts, 44 MiB with the defaults
(four parts in flight keep both cores busy: each part's send releases the GIL while the reader hashes the next).
While the bytes pass, they are hashed (SHA-256) and fed to the MP4 scanner, which rejects a non-MP4 on its
first 8 bytes and reads duration and resolution from the header. A failed transfer aborts its multipart
upload, so no half-written object and no orphaned parts stay behind; the key is fixed per job, so a second
run of the same transfer overwrites rather than duplicates.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import httpx

from .errors import TransferError, TruncatedDownload
from .jobs import Output
from .mp4 import Mp4Scanner
from .timeouts import longest_request_s

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MiB  # S3 wants ≥ 5 MiB for every part but the last
DEFAULT_MAX_IN_FLIGHT = 4
MAX_REDIRECTS = 3
# Each phase on its own (httpx): a GET's connect, send and pool wait are short; the read timeout is the longest
# the body may pause.
TRANSFER_TIMEOUT = httpx.Timeout(connect=10.0, write=10.0, pool=10.0, read=60.0)
# What a download still does once it stopped reading: abort or complete the upload, record the job's outcome.
FINISH_ALLOWANCE_S = 15.0


def overrun_s() -> float:
    """How long a transfer can run past its deadline: a try that started just before it waits for its answer
    (every phase once); one reading the body sees the deadline at its next read."""
    return longest_request_s(TRANSFER_TIMEOUT)


def download_deadline(remaining_s: float) -> float:
    """The `time.monotonic()` moment a downloader with `remaining_s` left (its invocation's time) stops starting
    and reading transfers, so that the overrun and the finish still end within that time: a download never
    outlives its invocation, locally (where nothing would stop it) as in Lambda."""
    return time.monotonic() + remaining_s - overrun_s() - FINISH_ALLOWANCE_S


@dataclass(frozen=True)
class TransferResult(Output):
    """The stored video's facts (what the job records) and how many parts carried it."""

    parts: int

    def output(self) -> Output:
        return Output(**{f.name: getattr(self, f.name) for f in fields(Output)})


class HttpStatusError(TransferError):
    """The content URL answered with a non-2xx status. 5xx, 408 and 429 are worth another try; other 4xx
    are not (404 is how an upstream says the result is gone)."""

    code = "upstream_content_status"

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"the upstream answered HTTP {status} for the video content")
        self.status = status
        self.retryable = status >= 500 or status in (408, 429)
        self._url = url


def stream_to_s3(
    chunks: Iterable[bytes],
    *,
    s3_client: Any,
    bucket: str,
    key: str,
    part_size: int = DEFAULT_PART_SIZE,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    expected_bytes: int | None = None,
    content_type: str = "video/mp4",
    metadata: dict[str, str] | None = None,
    deadline: float | None = None,
) -> TransferResult:
    """Uploads `chunks` to s3://bucket/key. Raises TransferError (and leaves nothing in S3) on any failure, and a
    retryable one when the `deadline` (time.monotonic()) passes before the last chunk."""
    if part_size < 5 * MiB:
        raise ValueError("part_size must be at least 5 MiB (S3's minimum part size)")
    upload = _MultipartUpload(s3_client, bucket, key, content_type, metadata or {}, max_in_flight)
    digest = hashlib.sha256()
    scanner = Mp4Scanner()
    buffer = bytearray()
    total = 0
    try:
        for chunk in chunks:
            if deadline is not None and time.monotonic() > deadline:
                raise TransferError(f"the download ran out of time after {total} bytes; it is tried again later")
            if not chunk:
                continue
            scanner.feed(chunk)
            digest.update(chunk)
            total += len(chunk)
            if expected_bytes is not None and total > expected_bytes:
                raise TruncatedDownload(f"more bytes arrived than the {expected_bytes} announced")
            buffer += chunk
            while len(buffer) >= part_size:
                upload.take_part(buffer, part_size)
        if expected_bytes is not None and total != expected_bytes:
            raise TruncatedDownload(f"{total} bytes arrived of the {expected_bytes} announced")
        info = scanner.finish()
        parts = upload.complete(buffer)
    except BaseException:
        upload.abort()
        raise
    return TransferResult(
        bytes=total,
        sha256=digest.hexdigest(),
        duration_s=round(info.duration_s, 3),
        width=info.width,
        height=info.height,
        bucket=bucket,
        key=key,
        parts=parts,
    )


def stream_url_to_s3(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    s3_client: Any,
    bucket: str,
    key: str,
    timeout: httpx.Timeout = TRANSFER_TIMEOUT,
    deadline: float | None = None,
    **kwargs: Any,
) -> TransferResult:
    """Fetches `url` (following at most MAX_REDIRECTS http(s) redirects, e.g. to an upstream's CDN) and
    streams the body into S3. Network failures become retryable TransferErrors, and so does the `deadline`
    (time.monotonic()) passing before the body is in."""
    try:
        with _open(client, method, url, headers or {}, timeout) as response:
            declared = response.headers.get("content-length")
            expected = int(declared) if declared and declared.isdigit() else None
            if response.headers.get("content-encoding", "identity") not in ("identity", ""):
                expected = None  # the length is of the encoded body; iter_bytes yields decoded bytes
            return stream_to_s3(
                # As the bytes arrive (each read at most the read timeout), so the deadline is seen in time.
                response.iter_bytes(),
                s3_client=s3_client,
                bucket=bucket,
                key=key,
                expected_bytes=expected,
                deadline=deadline,
                **kwargs,
            )
    except httpx.RemoteProtocolError as exc:
        # The server closed the connection before the announced length arrived.
        raise TruncatedDownload(f"the video download broke off: {exc}") from exc
    except httpx.TransportError as exc:
        raise TransferError(f"the video download broke off: {type(exc).__name__}") from exc


class _open:
    """Context manager over a streamed response that follows a bounded number of redirects by hand: the
    shared client never follows redirects on its own (webhook and upstream calls must not)."""

    def __init__(self, client: httpx.Client, method: str, url: str, headers: dict[str, str], timeout: httpx.Timeout):
        self._client, self._method, self._url, self._headers, self._timeout = (
            client,
            method,
            url,
            headers,
            timeout,
        )
        self._response: httpx.Response | None = None

    def __enter__(self) -> httpx.Response:
        url, headers = self._url, dict(self._headers)
        for _ in range(MAX_REDIRECTS + 1):
            request = self._client.build_request(self._method, url, headers=headers, timeout=self._timeout)
            response = self._client.send(request, stream=True)
            if response.is_redirect and "location" in response.headers:
                target = response.next_request.url if response.next_request else None
                response.close()
                if target is None or target.scheme not in ("http", "https"):
                    raise HttpStatusError(response.status_code, url)
                if target.host != httpx.URL(url).host:
                    headers.pop("Authorization", None)  # never hand the upstream key to another host
                url = str(target)
                continue
            if not response.is_success:
                status = response.status_code
                response.close()
                raise HttpStatusError(status, url)
            self._response = response
            return response
        raise TransferError(f"more than {MAX_REDIRECTS} redirects for the video content")

    def __exit__(self, *exc: object) -> None:
        if self._response is not None:
            self._response.close()


class _MultipartUpload:
    """Starts the multipart upload lazily: a body smaller than one part goes up as a single PutObject."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        content_type: str,
        metadata: dict[str, str],
        max_in_flight: int,
    ) -> None:
        self._s3, self._bucket, self._key = s3, bucket, key
        self._content_type, self._metadata = content_type, metadata
        self._upload_id: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._max_in_flight = max_in_flight
        self._futures: list[Future[dict[str, Any]]] = []
        self._failure: BaseException | None = None

    def take_part(self, buffer: bytearray, size: int) -> None:
        """Moves the first `size` bytes of `buffer` into a part. The upload slot is taken before the copy is
        made, so a part waiting for a slot never sits in memory beside the ones uploading."""
        self._slots.acquire()  # back-pressure: the reader waits while max_in_flight parts are uploading
        try:
            with memoryview(buffer) as view:
                part = bytes(view[:size])
            del buffer[:size]
            self._add_part(part)
        except BaseException:
            self._slots.release()
            raise

    def _add_part(self, body: bytes) -> None:
        if self._upload_id is None:
            created = self._s3.create_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                ContentType=self._content_type,
                Metadata=self._metadata,
                ServerSideEncryption="AES256",
            )
            self._upload_id = created["UploadId"]
            self._pool = ThreadPoolExecutor(self._max_in_flight, thread_name_prefix="s3-part")
        self._raise_failed()
        number = len(self._futures) + 1
        assert self._pool is not None
        future = self._pool.submit(self._upload, number, body)
        future.add_done_callback(self._part_done)
        self._futures.append(future)

    def _part_done(self, future: Future[dict[str, Any]]) -> None:
        if future.exception() is not None and self._failure is None:
            self._failure = future.exception()
        self._slots.release()

    def _upload(self, number: int, body: bytes) -> dict[str, Any]:
        answer = self._s3.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _raise_failed(self, *, wait: bool = False) -> None:
        if wait:
            for future in self._futures:
                future.exception()  # blocks until the part is done, failed or not
        if self._failure is not None:
            raise TransferError("uploading a part to S3 failed") from self._failure

    def complete(self, last: bytearray) -> int:
        if self._upload_id is None:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=bytes(last),
                ContentType=self._content_type,
                Metadata=self._metadata,
                ServerSideEncryption="AES256",
            )
            return 1
        if last:
            self.take_part(last, len(last))
        self._raise_failed(wait=True)
        parts = [future.result() for future in self._futures]
        self._s3.complete_multipart_upload(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": parts}
        )
        self._shutdown()
        self._upload_id = None
        return len(parts)

    def abort(self) -> None:
        self._shutdown()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            try:
                self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)
            except Exception as exc:  # the bucket's lifecycle rule removes abandoned parts if this fails too
                logger.warning("abort_multipart_upload failed", extra={"key": self._key, "error": repr(exc)})

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
