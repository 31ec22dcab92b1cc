"""The process's HTTP clients, made once and shared (a Lambda container reuses their connections).

Two kinds, because two kinds of host are called:
- upstreams (the providers' APIs and their result links): one pooled client; redirects are never followed by
  httpx itself (transfer.py follows a result link's few redirects on purpose, and our key never goes along);
- user-given URLs (webhook receivers, reference image URLs): connections go to the address the SSRF guard
  checked, with the name only in the Host header and TLS SNI. Such a client must not pool connections (the pool
  is keyed by address, so a kept connection could carry a request for another name), must not read proxies from
  the environment (a proxy would resolve the name again behind the guard's back), and follows no redirect (each
  hop is checked by the caller).
"""

from __future__ import annotations

from functools import lru_cache

import httpx


@lru_cache(maxsize=1)
def upstream_client() -> httpx.Client:
    # As many connections as the poller checks jobs at once (config.poller_concurrency), so no check waits for
    # one, and all of them kept open between sweeps (httpx keeps 20 by default: the rest would be a new TCP
    # and TLS handshake for nearly every poll of a large sweep).
    return httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))


@lru_cache(maxsize=1)
def user_url_client() -> httpx.Client:
    return httpx.Client(
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=0),
    )
