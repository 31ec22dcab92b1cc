"""`.vidrelay/local.json`: how the CLI finds a running `vidrelay local`.

The stack writes the file when it serves and removes it when it stops cleanly; the file carries the stack's pid,
so a stack that died without cleaning up (killed, crashed) is told apart from a running one. Readers look for the
file in the current folder and each folder above it, so every command works from anywhere inside the project.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidrelay.failures import CliError

STATE_DIR = ".vidrelay"
STATE_NAME = "local.json"
START_HINT = "start it with `make local`"


@dataclass(frozen=True)
class LocalState:
    path: Path
    info: dict[str, Any]

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def pid(self) -> int | None:
        pid = self.info.get("pid")
        return pid if isinstance(pid, int) else None

    def is_running(self) -> bool:
        """The process that wrote the file still exists. A file without a pid predates pids: trusted, as before."""
        return self.pid is None or pid_alive(self.pid)

    def require_running(self) -> LocalState:
        if not self.is_running():
            raise CliError(f"the local stack at {self.api_url} is not running ({self.path} is stale); {START_HINT}")
        return self

    @contextmanager
    def reaching_aws(self) -> Iterator[None]:
        """Calls on the embedded AWS inside: no answer from it means the stack is gone, and is said so."""
        from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

        try:
            yield
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise CliError(
                f"the local stack at {self.api_url} is not running (its AWS endpoint "
                f"{self.info.get('aws_endpoint_url')} does not answer); {START_HINT}"
            ) from exc

    def aws_client(self, service: str) -> Any:
        """A boto3 client on the stack's embedded AWS: it answers at once or not at all, so a stack that went away
        fails in about a second instead of botocore's retries over half a minute."""
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=2, read_timeout=20, retries={"total_max_attempts": 1, "mode": "standard"})
        make: Any = boto3.client  # typed per literal service name; this one takes any
        return make(
            service,
            endpoint_url=self.info["aws_endpoint_url"],
            region_name=self.info["region"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=config,
        )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def find_state_file(start: Path | None = None) -> Path | None:
    """The nearest `.vidrelay/local.json` in `start` (default: the current folder) or a folder above it."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / STATE_DIR / STATE_NAME
        if path.is_file():
            return path
    return None


def read_state(start: Path | None = None) -> LocalState | None:
    """The nearest state file, running or not (the caller decides: `require_running`), or None when there is none."""
    path = find_state_file(start)
    if path is None:
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path} ({exc}); delete it and {START_HINT}") from exc
    if not isinstance(info, dict) or "api_url" not in info:
        raise CliError(f"{path} is not a vidrelay local state file; delete it and {START_HINT}")
    return LocalState(path, info)


def running_stack(purpose: str) -> LocalState:
    """The running local stack, or a one-line error saying how to get one (`purpose` names what needs it)."""
    state = read_state()
    if state is None:
        raise CliError(f"no local stack found (no {STATE_DIR}/{STATE_NAME} here or above) {purpose}; {START_HINT}")
    return state.require_running()


def write_state(state_dir: Path, info: dict[str, Any]) -> Path:
    """Written whole or not at all: scripts and tests poll for this file and read it the moment it appears."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_NAME
    partial = state_dir / f"{STATE_NAME}.partial"
    partial.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(partial, path)
    return path


def remove_state(state_dir: Path, info: dict[str, Any]) -> None:
    """Removes the file if it is still this stack's: another stack started in the same folder since owns it now."""
    path = state_dir / STATE_NAME
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if current.get("pid") == info.get("pid") and current.get("api_url") == info.get("api_url"):
        path.unlink(missing_ok=True)
