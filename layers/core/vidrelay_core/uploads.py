"""Presigned uploads (`POST /v1/uploads`) for reference files too big for API Gateway's inline body (~6 MB).

The URL is signed for exactly the declared size and type, so S3 itself refuses anything else; the object lands
under `uploads/<tenant>/`, where only that tenant's references may name it, and expires with the bucket's
lifecycle rule.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import ids


@dataclass(frozen=True)
class UploadGrant:
    id: str
    filename: str
    content_type: str
    bytes: int
    upload_url: str
    # A presigned PUT is valid only with exactly the headers it was signed with.
    headers: dict[str, str]
    s3_uri: str
    expires_at: int


def safe_name(filename: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in filename).lstrip(".") or "file"


class Uploads:
    def __init__(self, s3: Any, *, bucket: str, url_ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._url_ttl_s = url_ttl_s
        self.clock = clock

    def create(self, tenant: str, *, filename: str, content_type: str, size: int) -> UploadGrant:
        """A presigned PUT for one file (filename, type and size already validated by the contract)."""
        upload_id = ids.new_upload_id()
        key = f"uploads/{tenant}/{upload_id}/{safe_name(filename)}"
        url = self._s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": self._bucket, "Key": key, "ContentType": content_type, "ContentLength": size},
            ExpiresIn=self._url_ttl_s,
        )
        return UploadGrant(
            id=upload_id,
            filename=filename,
            content_type=content_type,
            bytes=size,
            upload_url=str(url),
            headers={"Content-Type": content_type},
            s3_uri=f"s3://{self._bucket}/{key}",
            expires_at=int(self.clock() + self._url_ttl_s),
        )
