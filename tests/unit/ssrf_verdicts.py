"""Prints the SSRF guard's verdict on every case of a table, on whatever interpreter runs it.

Usage: python ssrf_verdicts.py path/to/ssrf.py < cases.json > verdicts.json

The guard is loaded from its file alone (it needs only the standard library), so this runs on interpreters
that have none of vidrelay's dependencies installed. Nothing here reaches the network: names resolve to the
case's `answers`.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

DEFAULT_ANSWERS = ["93.184.216.34"]


def load_guard(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("ssrf_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks the module up while building CheckedUrl
    spec.loader.exec_module(module)
    return module


def verdict(guard: Any, case: dict[str, Any]) -> dict[str, Any]:
    answers = case.get("answers", DEFAULT_ANSWERS)
    ports = guard.ANY_PORT if case.get("ports") == "any" else guard.WEBHOOK_PORTS
    try:
        guard.check_url(
            case["url"], ports=ports, allow_loopback=bool(case.get("local")), resolver=lambda host, port: answers
        )
    except guard.UrlRejected as exc:
        return {"url": case["url"], "allowed": False, "reason": str(exc)}
    return {"url": case["url"], "allowed": True, "reason": None}


def main() -> None:
    guard = load_guard(sys.argv[1])
    cases = json.load(sys.stdin)
    json.dump({"python": list(sys.version_info[:3]), "verdicts": [verdict(guard, case) for case in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
