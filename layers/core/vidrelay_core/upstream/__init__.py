"""Upstream adapters, one per dialect, chosen by the model's family."""

from __future__ import annotations

import httpx

from .base import Adapter, account_for
from .videos import VideosAdapter

_client: httpx.Client | None = None


def http_client() -> httpx.Client:
    """One pooled client per process (a Lambda container reuses its connections across invocations)."""
    global _client
    if _client is None:
        _client = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=64))
    return _client


def adapter_for(family: str) -> Adapter:
    if family == "videos":
        return VideosAdapter(account_for(family), http_client())
    raise ValueError(f"no adapter for family {family!r}")
