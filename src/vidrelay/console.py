"""How the CLI shows things: borderless tables whose columns line up (also when piped), progress bars on stderr
(stdout stays for results), and one way to write times, sizes and amounts."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output has no terminal width: without one rich would wrap at 80 columns and break the alignment that
# scripts (and `column`, `awk`) rely on.
_PIPE_WIDTH = 400


def console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else _PIPE_WIDTH, highlight=False)


def table(*columns: str, wide: Iterable[str] = ()) -> Table:
    """A borderless table; columns in `wide` (free text) are cut with an ellipsis instead of wrapping."""
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    shrinkable = set(wide)
    for name in columns:
        if name in shrinkable:
            grid.add_column(name, overflow="ellipsis", no_wrap=True, max_width=48)
        else:
            grid.add_column(name, no_wrap=True)
    return grid


def show(renderable: Any) -> None:
    out = console()
    if out.is_terminal:
        out.print(renderable)
        return
    # Piped: without the cell padding rich leaves at the end of each line, so `grep 'completed$'` works.
    with out.capture() as captured:
        out.print(renderable)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def when(unix: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix)) if unix else "-"


def size_of(count: int | None) -> str:
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover - the loop always returns


def usd(amount: float | None) -> str:
    return f"${amount:.2f}" if amount is not None else "-"


def status_of(video: dict[str, Any]) -> str:
    """`in_progress 40%`, `completed`, `failed (upstream_failed)`."""
    status = str(video.get("status"))
    if status in ("queued", "in_progress"):
        return f"{status} {video.get('progress') or 0}%"
    error = video.get("error") or {}
    return f"{status} ({error['code']})" if status == "failed" and error.get("code") else status


@contextmanager
def progress_bar(description: str, *, total: float | None, status: str = "", transfer: bool = False) -> Iterator[Any]:
    """A rich progress bar on stderr. Yields update(completed=..., status=..., total=...)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    if transfer:
        columns += [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns += [TextColumn("{task.percentage:>3.0f}%"), TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
    err = console(stderr=True)
    # Bars only on a terminal: in a log or a pipe they would be stray lines around the messages.
    with Progress(*columns, console=err, disable=not err.is_terminal) as progress:
        task = progress.add_task(description, total=total, status=status)

        def update(**fields: Any) -> None:
            progress.update(task, **fields)

        yield update


def wait_with_progress(
    client: Any,
    video: dict[str, Any],
    *,
    label: str | None = None,
    timeout_s: float = 900.0,
    seen: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Waits for the video with a progress bar; raises the client's WaitTimedOut after `timeout_s`. `seen` gets
    each state read (so an interrupted wait can say where the job was)."""
    with progress_bar(label or video["id"], total=100, status=video["status"]) as update:

        def follow(current: dict[str, Any]) -> None:
            if seen:
                seen(current)
            update(completed=current.get("progress") or 0, status=current["status"])

        return dict(client.wait(video["id"], on_progress=follow, timeout_s=timeout_s))
