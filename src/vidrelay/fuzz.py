"""`make fuzz`: hostile requests against a running `vidrelay local`, checked against its own OpenAPI document.

Two sources of cases, both sent over HTTP with a real tenant key:

- schemathesis generates requests for every operation of the served `/openapi.json` (valid and invalid
  parameters, bodies, headers); each answer must not be a 5xx and must match the document's schema for its status;
- hypothesis bodies the document cannot describe: nested objects and bracket fields (`metadata[k]`, `key[]`),
  lone surrogates, deep and huge values, wrong types and nulls, in JSON and multipart, on every body-taking route,
  and ids with `/`, `%2F` and odd characters on every id route. Each is taken (a JSON answer) or refused with a
  4xx in the OpenAI error shape.

No answer may carry a stack trace. Prints one JSON document (cases per operation, failures by kind with the
first examples) and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vidrelay.chaos.stack import StackOptions, local_stack

TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "site-packages/")
EXAMPLES_PER_KIND = 5


@dataclass
class Findings:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def saw(self, operation: str, status: int) -> None:
        self.cases[operation] += 1
        self.statuses[str(status)] += 1

    def fail(self, kind: str, example: dict[str, Any]) -> None:
        self.failures[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < EXAMPLES_PER_KIND:
            shown.append(example)


def check_answer(findings: Findings, label: str, response: httpx.Response | Any, *, hostile: bool) -> None:
    """What every answer must be: no 5xx, no stack trace, every 4xx in the OpenAI error shape."""
    status = int(response.status_code)
    text = response.text or ""
    findings.saw(label, status)
    example = {"request": label, "status": status, "body": text[:300]}
    if status >= 500:
        findings.fail("server_error", example)
    if any(marker in text for marker in TRACE_MARKERS):
        findings.fail("stack_trace", example)
    if 400 <= status < 500:
        # Every refusal is the OpenAI error shape, whatever was sent (a hostile body that is valid may be taken).
        try:
            error = json.loads(text)["error"]
            assert isinstance(error["message"], str) and error["message"]
        except Exception:
            findings.fail("not_openai_error_shape", example)
    elif hostile and 200 <= status < 300:
        try:
            assert isinstance(json.loads(text), dict)
        except Exception:
            findings.fail("not_json", example)


# -- schemathesis ---------------------------------------------------------------------------------------------


def run_schemathesis(base_url: str, api_key: str, cases: int, seed: int, findings: Findings) -> None:
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {api_key}"}
    for result in schema.get_all_operations():
        # An operation the document does not describe validly fails the run here, loudly.
        operation = result.ok()  # type: ignore[union-attr]
        label = f"{operation.method.upper()} {operation.path}"
        fuzz_operation(operation, label, base_url, headers, cases, seed, findings)


def fuzz_operation(
    operation: Any, label: str, base_url: str, headers: dict[str, str], cases: int, seed: int, findings: Findings
) -> None:
    import hypothesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    @hypothesis.settings(
        max_examples=cases,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.seed(seed)
    @hypothesis.given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        case.headers = {**(case.headers or {}), **headers}
        response = case.call(base_url=base_url, timeout=60)
        check_answer(findings, label, response, hostile=False)
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        except Exception as exc:  # a schemathesis failure group: the answer does not match the document
            text = " ".join(str(exc).split())[:400]
            if "server error" not in text.lower():  # counted once, above
                findings.fail("schema_mismatch", {"request": label, "status": response.status_code, "problem": text})

    fuzz()


# -- hypothesis bodies ------------------------------------------------------------------------------------------


def hostile_bodies(cases: int, seed: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, httpx request kwargs) for bodies and ids the document cannot describe."""
    import random

    import hypothesis.strategies as st
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as seeded

    strings = st.one_of(
        st.text(max_size=40),
        st.just("\ud800x"),
        st.just("a" * 70_000),
        st.just("[" * 2000),
        st.just(""),
        st.just("null"),
    )
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), strings
    )
    nested = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    )
    fields = ("model", "prompt", "seconds", "size", "metadata", "webhook_url", "webhook_events", "aspectRatio")
    json_bodies = st.dictionaries(st.sampled_from(fields) | st.text(max_size=12), nested, max_size=6)
    form_keys = st.sampled_from(
        ("prompt", "model", "seconds", "size", "metadata[order]", "metadata[a][b]", "webhook_events[]", "metadata")
    ) | st.text(min_size=1, max_size=12)
    form_bodies = st.lists(st.tuples(form_keys, strings), max_size=6)
    found: list[tuple[str, str, dict[str, Any]]] = []

    @settings(max_examples=cases, database=None, suppress_health_check=list(HealthCheck), deadline=None)
    @seeded(seed)
    @given(body=json_bodies, form=form_bodies)
    def collect(body: dict[str, Any], form: list[tuple[str, str]]) -> None:
        raw = json.dumps(body, ensure_ascii=True, allow_nan=False)
        for path in ("/v1/videos", "/v1/webhook_endpoints", "/v1/uploads"):
            found.append(("POST", path, {"content": raw, "headers": {"content-type": "application/json"}}))
        files = [(key, (None, value.encode("utf-8", "surrogatepass"))) for key, value in form] or [
            ("prompt", (None, b""))
        ]
        found.append(("POST", "/v1/videos", {"files": files}))

    collect()
    rng = random.Random(seed)
    odd_ids = ["a%2Fb", "a/b", "..%2F..%2Fetc", "%00", "video_" + "x" * 300, "%F0%9F%8E%A5", "video_%ud800", "' OR 1=1"]
    for odd in odd_ids:
        for method, template in (
            ("GET", "/v1/videos/{}"),
            ("DELETE", "/v1/videos/{}"),
            ("GET", "/v1/videos/{}/content"),
            ("GET", "/v1/videos/{}/deliveries"),
            ("GET", "/v1/models/{}"),
            ("DELETE", "/v1/webhook_endpoints/{}"),
        ):
            found.append((method, template.format(odd), {}))
    deep = "[" * 100_000 + "]" * 100_000
    found.append(("POST", "/v1/videos", {"content": deep, "headers": {"content-type": "application/json"}}))
    found.append(("POST", "/v1/videos", {"content": b"\xff\xfe\x00bad", "headers": {"content-type": "text/plain"}}))
    rng.shuffle(found)
    return found


def run_hostile(api_url: str, api_key: str, cases: int, seed: int, findings: Findings) -> None:
    base = api_url.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for method, path, kwargs in hostile_bodies(cases, seed):
            label = f"hostile {method} {path.split('?')[0][:60]}"
            response = client.request(method, path, **kwargs)
            check_answer(findings, label, response, hostile=method == "POST")


# -- the run ----------------------------------------------------------------------------------------------------


def run(cases: int, hostile_cases: int, seed: int, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    findings = Findings()
    started = time.monotonic()
    with local_stack(workdir, StackOptions(duplicate_deliveries=0.0)) as stack:
        key = str(stack.info["api_key"])
        base = stack.api_url.removesuffix("/v1")
        log(f"fuzzing {base} ({cases} cases per operation, {hostile_cases} hostile bodies)")
        run_schemathesis(base, key, cases, seed, findings)
        run_hostile(stack.api_url, key, hostile_cases, seed, findings)
    return {
        "cases": sum(findings.cases.values()),
        "failures": sum(findings.failures.values()),
        "failures_by_kind": dict(findings.failures),
        "statuses": dict(sorted(findings.statuses.items())),
        "cases_per_operation": dict(sorted(findings.cases.items())),
        "examples": findings.examples,
        "seed": seed,
        "duration_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidrelay.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=150, help="schemathesis cases per operation")
    parser.add_argument("--hostile", type=int, default=300, help="hypothesis-generated hostile bodies")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the local stack's log here")
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        report = run(args.cases, args.hostile, args.seed, args.workdir, log)
    else:
        with tempfile.TemporaryDirectory(prefix="vidrelay-fuzz-") as workdir:
            report = run(args.cases, args.hostile, args.seed, Path(workdir), log)
    print(json.dumps(report, indent=1))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
