"""Upstream adapters, one per dialect, chosen by the model's family; one adapter per account, in failover order."""

from __future__ import annotations

from ..http import upstream_client
from .base import Account, Adapter, StreamingAdapter, accounts_for
from .chat import ChatAdapter
from .generations import GenerationsAdapter
from .videos import VideosAdapter

_DIALECTS: dict[str, type[VideosAdapter | GenerationsAdapter | ChatAdapter]] = {
    "videos": VideosAdapter,
    "generations": GenerationsAdapter,
    "chat": ChatAdapter,
}


def adapters_for(family: str) -> list[Adapter]:
    """The family's adapters, one per account, in failover order."""
    dialect = _DIALECTS.get(family)
    if dialect is None:
        raise ValueError(f"no adapter for family {family!r}")
    return [dialect(account, upstream_client()) for account in accounts_for(family)]


__all__ = ["Account", "Adapter", "StreamingAdapter", "adapters_for"]
