"""The SSRF guard's verdicts over a broad table of hostile and legitimate URLs, on every Python it runs on.

The guard must not depend on `ipaddress`'s notion of "global", which changed between 3.11, 3.12 and 3.13 (the
Lambda runtime): the same table runs in-process and, through a stdlib-only script that loads ssrf.py by path,
on each interpreter found, and every verdict and reason must be the expected one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from vidrelay_core import ssrf
from vidrelay_core.ssrf import ANY_PORT, WEBHOOK_PORTS, UrlRejected, check_url

from tests.unit import ssrf_table

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "layers" / "core" / "vidrelay_core" / "ssrf.py"
SCRIPT = Path(__file__).with_name("ssrf_verdicts.py")
VERSIONS = ["3.11", "3.12", "3.13"]
CASES = ssrf_table.cases()


def _verdict(case: dict[str, Any]) -> tuple[bool, str | None]:
    answers = case.get("answers", ["93.184.216.34"])
    ports = ANY_PORT if case.get("ports") == "any" else WEBHOOK_PORTS
    try:
        check_url(case["url"], ports=ports, allow_loopback=bool(case.get("local")), resolver=lambda h, p: answers)
    except UrlRejected as exc:
        return False, str(exc)
    return True, None


def _expectation_met(case: dict[str, Any], allowed: bool, reason: str | None) -> bool:
    if case["allowed"]:
        return allowed
    return not allowed and case.get("because", "") in (reason or "")


def test_the_table_is_broad_and_holds_the_findings() -> None:
    hostile = [c for c in CASES if not c["allowed"]]
    legitimate = [c for c in CASES if c["allowed"]]
    assert len(hostile) >= 80
    assert len(legitimate) >= 40
    assert {c["url"] for c in hostile} >= set(ssrf_table.FINDINGS)
    urls = {c["url"] for c in legitimate}
    assert any(":" in u.split("//")[1].split("/")[0] and "[" in u for u in urls)  # v6 literals
    assert f"https://{ssrf_table.PUBLIC_V4}/in" in urls  # v4 literals


@pytest.mark.parametrize("case", CASES, ids=[f"{c['why']}|{c['url']!r}" for c in CASES])
def test_verdict(case: dict[str, Any]) -> None:
    allowed, reason = _verdict(case)
    assert _expectation_met(case, allowed, reason), (case, allowed, reason)


def _pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        done = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30)
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


@cache
def _interpreter(version: str) -> str | None:
    """An interpreter for `version`: this one, a pyenv-installed one, or one on PATH, checked by asking it."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    candidates: list[str] = []
    root = _pyenv_root()
    if root is not None:
        installed = sorted(root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)
        candidates += [str(path) for path in installed]
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return candidate
    return None


@pytest.mark.parametrize("version", VERSIONS)
def test_the_same_verdicts_on_every_python(version: str) -> None:
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} found (not this interpreter, not under pyenv's versions/, not on PATH)")
    done = subprocess.run(
        [python, "-I", str(SCRIPT), str(GUARD)],
        input=json.dumps(CASES),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["python"][:2] == [int(n) for n in version.split(".")]
    wrong = [
        (case["url"], case["why"], verdict["reason"])
        for case, verdict in zip(CASES, report["verdicts"], strict=True)
        if not _expectation_met(case, verdict["allowed"], verdict["reason"])
    ]
    assert wrong == [], f"Python {'.'.join(map(str, report['python']))}: {len(wrong)} wrong verdicts"
    # The same reasons too, word for word, as the interpreter running the suite gives.
    here = [_verdict(case) for case in CASES]
    there = [(v["allowed"], v["reason"]) for v in report["verdicts"]]
    assert there == here


def test_the_guard_needs_only_the_standard_library() -> None:
    imported = {
        line.split()[1].split(".")[0]
        for line in GUARD.read_text().splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    assert ssrf.__file__ is not None and Path(ssrf.__file__).resolve() == GUARD.resolve()
