"""Cold import of each handler (functions/*/app.py) in a virtual environment holding only what Lambda has: the
layer's requirements (layers/core/requirements.txt) plus boto3 (the runtime's own), on the template's Python when
pyenv has it. The venv is built once under .cache/bench/ (keyed by the requirements), then reused."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from . import log, median, ratio

TARGET_RATIO = 1.2
TARGET_RATIO_API = 1.5
# Timed in a fresh interpreter each run, after a first unmeasured run wrote every module's bytecode (a layer
# built by pip ships its .pyc the same way).
TIMER = (
    "import sys, time\n"
    "sys.path[:0] = {paths!r}\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "print(time.perf_counter() - t)\n"
)
_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def root() -> Path:
    from vidrelay.local.stack import project_root

    return project_root()


def lambda_python() -> str:
    """The template's runtime (python3.13) from pyenv, else this interpreter."""
    candidates = sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")).glob("versions/3.13*/bin/python"))
    pyenv = shutil.which("pyenv")
    if pyenv and not candidates:
        found = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()
        candidates = sorted(Path(found).glob("versions/3.13*/bin/python"))
    return str(candidates[-1]) if candidates else sys.executable


def lambda_venv() -> Path:
    requirements = root() / "layers/core/requirements.txt"
    python = lambda_python()
    boto3_pin = f"boto3=={version('boto3')}"
    key = hashlib.sha256(f"{python}\n{boto3_pin}\n{requirements.read_text()}".encode()).hexdigest()[:12]
    venv = root() / ".cache/bench" / f"lambda-venv-{key}"
    ready = venv / ".ready"
    if ready.exists():
        return venv
    log(f"building the Lambda-like venv {venv} (once)")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements), boto3_pin], check=True)
    ready.write_text(f"{python}\n{boto3_pin}\n")
    return venv


def timed_import(python: str, module: str, paths: list[str], *, importtime: bool = False) -> tuple[float, str]:
    env = {"PATH": os.environ.get("PATH", ""), "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    command = [
        python,
        "-I",
        *(["-X", "importtime"] if importtime else []),
        "-c",
        TIMER.format(paths=paths, module=module),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"import {module} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1]), done.stderr


def parse_importtime(text: str) -> list[dict[str, Any]]:
    """-X importtime lines → [{module, depth, self_ms, cumulative_ms}] in the order Python printed them."""
    rows = []
    for line in text.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            self_us, cumulative_us, indent, module = match.groups()
            rows.append(
                {
                    "module": module,
                    "depth": len(indent) // 2,
                    "self_ms": round(int(self_us) / 1000, 1),
                    "cumulative_ms": round(int(cumulative_us) / 1000, 1),
                }
            )
    return rows


def import_tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Links each row to its children (Python prints an import after everything it imported, one level deeper)."""
    stack: list[dict[str, Any]] = []
    roots: list[dict[str, Any]] = []
    for row in reversed(rows):
        node = {**row, "children": []}
        while stack and stack[-1]["depth"] >= node["depth"]:
            stack.pop()
        (stack[-1]["children"] if stack else roots).insert(0, node)
        stack.append(node)
    return roots


def beyond_ms(node: dict[str, Any], baseline: set[str]) -> float:
    """A node's cumulative time without the subtrees boto3's own import also loads."""
    inside = 0.0

    def walk(child: dict[str, Any]) -> None:
        nonlocal inside
        if child["module"] in baseline:
            inside += child["cumulative_ms"]
            return
        for grandchild in child["children"]:
            walk(grandchild)

    for child in node["children"]:
        walk(child)
    return round(node["cumulative_ms"] - inside, 1)


def heaviest_beyond(rows: list[dict[str, Any]], baseline: set[str], limit: int = 10) -> list[dict[str, Any]]:
    """The imports boto3's own import does not make, each at the outermost module that pulled it in, by the time
    they add beyond boto3 (`beyond_boto3_ms`: cumulative minus what boto3 loads anyway), with its three heaviest
    such children."""
    found: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], top: bool) -> None:
        if not top and node["module"] not in baseline:
            children = sorted(
                (c for c in node["children"] if c["module"] not in baseline),
                key=lambda c: beyond_ms(c, baseline),
                reverse=True,
            )
            found.append(
                {
                    "module": node["module"],
                    "beyond_boto3_ms": beyond_ms(node, baseline),
                    "cumulative_ms": node["cumulative_ms"],
                    "self_ms": node["self_ms"],
                    "pulls_in": [f"{c['module']} {beyond_ms(c, baseline)} ms" for c in children[:3]],
                }
            )
            return
        for child in node["children"]:
            walk(child, False)

    for root_node in import_tree(rows):
        walk(root_node, root_node["depth"] == 0 and root_node["module"] == "app")
    return sorted(found, key=lambda r: r["beyond_boto3_ms"], reverse=True)[:limit]


def bench_cold_import(runs: int) -> dict[str, Any]:
    venv = lambda_venv()
    python = str(venv / "bin/python")
    layer = str(root() / "layers/core")
    handlers = sorted(p.parent.name for p in (root() / "functions").glob("*/app.py"))
    targets: dict[str, list[str]] = {"boto3": []} | {
        name: [str(root() / "functions" / name), layer] for name in handlers
    }
    for name, paths in targets.items():  # unmeasured: writes bytecode, warms the page cache
        timed_import(python, "boto3" if name == "boto3" else "app", paths)
    samples: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(runs):  # interleaved, so load on the shared machine hits every figure alike
        for name, paths in targets.items():
            samples[name].append(timed_import(python, "boto3" if name == "boto3" else "app", paths)[0])
    boto3_s = median(samples["boto3"])
    _, boto3_trace = timed_import(python, "boto3", [], importtime=True)
    baseline = {row["module"] for row in parse_importtime(boto3_trace)}
    results: dict[str, Any] = {}
    for name in handlers:
        seconds = median(samples[name])
        limit = TARGET_RATIO_API if name == "api" else TARGET_RATIO
        over = seconds / boto3_s
        entry: dict[str, Any] = {
            "median_ms": round(seconds * 1000, 1),
            "runs_ms": [round(s * 1000, 1) for s in samples[name]],
            "ratio_to_boto3": ratio(seconds, boto3_s),
            "target_ratio": limit,
            "verdict": "meets target" if over <= limit else "misses target",
        }
        _, trace = timed_import(python, "app", targets[name], importtime=True)
        entry["heaviest_imports_beyond_boto3"] = heaviest_beyond(parse_importtime(trace), baseline)
        results[name] = entry
    verdicts = [entry["verdict"] for entry in results.values()]
    return {
        "method": (
            f"A venv of {lambda_python()} holding only layers/core/requirements.txt and boto3=={version('boto3')} "
            f"(built once under .cache/bench/). Each of {runs} rounds runs, in a fresh `python -I` each, `import "
            "boto3` and every handler's `import app` (sys.path = the function's folder, then layers/core), timed "
            "around the import statement alone; rounds interleave the handlers. A first unmeasured round writes "
            "the bytecode. Figures are medians; ratio = handler median / boto3 median in the same run. "
            "heaviest_imports_beyond_boto3: from one `-X importtime` run, the outermost modules boto3's own import "
            "does not load, by the time they add beyond it (beyond_boto3_ms)."
        ),
        "python": lambda_python(),
        "boto3_median_ms": round(boto3_s * 1000, 1),
        "boto3_runs_ms": [round(s * 1000, 1) for s in samples["boto3"]],
        "handlers": results,
        "verdict": "meets target" if all(v == "meets target" for v in verdicts) else "misses target",
    }
