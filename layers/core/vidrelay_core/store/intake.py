"""How each version of an S3 intake sidecar was used: alone ("text") or with its image ("pair")."""

from __future__ import annotations

import time

from .codec import Table

# A sidecar's use is remembered well past any redelivery of its S3 event (SQS keeps a message 14 days at most).
SIDECAR_CLAIM_TTL_S = 30 * 86_400


def _key(bucket: str, key: str, etag: str) -> dict[str, str]:
    return {"pk": f"INTAKE#{bucket}/{key}#{etag}", "sk": "SIDECAR"}


class IntakeClaims:
    def __init__(self, table: Table) -> None:
        self._table = table

    def claim_sidecar(self, bucket: str, key: str, etag: str, use: str) -> str:
        """The first claim wins and is never changed, so a sidecar that started a text-to-video job cannot also
        start one with an image that arrived late. Returns the use that holds: `use` itself when this claim won
        or repeated it, the other one when it lost."""
        answer = self._table.update(
            _key(bucket, key, etag),
            UpdateExpression="SET #u = if_not_exists(#u, :u), expires_at_ttl = if_not_exists(expires_at_ttl, :ttl)",
            ExpressionAttributeNames={"#u": "use"},
            ExpressionAttributeValues={":u": use, ":ttl": int(time.time() + SIDECAR_CLAIM_TTL_S)},
            ReturnValues="ALL_NEW",
        )
        return str(answer["Attributes"]["use"])

    def sidecar_use(self, bucket: str, key: str, etag: str) -> str | None:
        item = self._table.get(_key(bucket, key, etag))
        return str(item["use"]) if item else None
