"""The deployed downloader's allocator setting (template.yaml), for the one process the local stack runs every
function in.

glibc reads `MALLOC_MMAP_THRESHOLD_` once, when the process starts, so it must be in the environment before
Python runs. Without it the stack's memory grows by megabytes per job: every download's 8 MiB parts and every
decoded thumbnail frame raise glibc's dynamic mmap threshold, later buffers come from heaps spread over a
hundred threads' arenas, and those heaps are never given back (1,000 jobs reached 20 GB). With it, large buffers
are mmapped and returned at once, as in the deployed function.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache

from .stack import project_root
from .template import Template

VARIABLE = "MALLOC_MMAP_THRESHOLD_"


@lru_cache(maxsize=1)
def template_allocator_env() -> dict[str, str]:
    """The allocator variables the deployed downloader runs with (the template read once per process)."""
    environment = Template.load(project_root() / "template.yaml").function("DownloaderFunction").environment
    value = environment.get(VARIABLE)
    return {VARIABLE: str(value)} if isinstance(value, str | int) else {}


def with_template_allocator() -> None:
    """Restarts this process (same pid, same arguments) with the template's allocator setting, unless it already
    runs with it: the local stack and the benchmark call this first, before anything is started."""
    wanted = template_allocator_env()
    if all(os.environ.get(name) == value for name, value in wanted.items()):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **wanted})
