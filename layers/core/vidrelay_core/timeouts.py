"""How long one HTTP request can take under httpx's timeouts, for the leases that must outlast it.

httpx times each phase on its own: waiting for a pooled connection, connecting, sending, and each read of the
answer. A request that runs every phase to its limit once (the answer arriving in one piece, at the last moment)
takes their sum; that is the figure every lease is compared with. A peer that trickles bytes restarts the read
clock with each one, which no per-phase timeout bounds: such a worker outlives its lease and is handled as one
that died (see each lease's recovery).
"""

from __future__ import annotations

import httpx


def longest_request_s(timeout: httpx.Timeout) -> float:
    phases = (timeout.pool, timeout.connect, timeout.write, timeout.read)
    if any(phase is None for phase in phases):
        raise ValueError(f"{timeout} has a phase without a limit: no lease can outlast it")
    return float(sum(phase for phase in phases if phase is not None))
