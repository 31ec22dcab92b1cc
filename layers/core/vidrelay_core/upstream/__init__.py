"""Upstream adapters, one per dialect, chosen by the model's family; one adapter per account, in failover order."""

from __future__ import annotations

import httpx

from .base import Account, Adapter, StreamingAdapter, accounts_for
from .chat import ChatAdapter
from .generations import GenerationsAdapter
from .videos import VideosAdapter

_client: httpx.Client | None = None

_DIALECTS: dict[str, type[VideosAdapter | GenerationsAdapter | ChatAdapter]] = {
    "videos": VideosAdapter,
    "generations": GenerationsAdapter,
    "chat": ChatAdapter,
}


def http_client() -> httpx.Client:
    """One pooled client per process (a Lambda container reuses its connections across invocations)."""
    global _client
    if _client is None:
        _client = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=64))
    return _client


def adapters_for(family: str) -> list[Adapter]:
    """The family's adapters, one per account, in failover order."""
    dialect = _DIALECTS.get(family)
    if dialect is None:
        raise ValueError(f"no adapter for family {family!r}")
    return [dialect(account, http_client()) for account in accounts_for(family)]


__all__ = ["Account", "Adapter", "StreamingAdapter", "adapters_for", "http_client"]
