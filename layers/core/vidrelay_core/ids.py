"""Identifiers. Video ids follow OpenAI's `video_…` form so SDKs and the seed samples accept them."""

from __future__ import annotations

import hashlib
import secrets


def new_video_id() -> str:
    return "video_" + secrets.token_hex(16)


def new_upload_id() -> str:
    return "upload_" + secrets.token_hex(12)


def new_endpoint_id() -> str:
    return "we_" + secrets.token_hex(12)


def event_id(video_id: str, version: int, kind: str) -> str:
    # Deterministic: a transition republished after a crash carries the same id, so receivers (and our own
    # delivery ledger) see one event, not two.
    digest = hashlib.sha256(f"{video_id}:{version}:{kind}".encode()).hexdigest()[:24]
    return f"evt_{digest}"


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
