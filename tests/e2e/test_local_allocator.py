"""`vidrelay local` runs every function in one process, so it restarts itself with the deployed downloader's
allocator setting (template.yaml): without it the stack's memory grew by megabytes per job."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import LocalStackProcess
from vidrelay.local.allocator import template_allocator_env


def test_the_local_stack_runs_with_the_templates_allocator_setting(local_stack: LocalStackProcess) -> None:
    wanted = template_allocator_env()
    assert wanted == {"MALLOC_MMAP_THRESHOLD_": "131072"}
    # Restarted in place (execve): the pid the caller started is the one serving, with the variable set.
    assert local_stack.info["pid"] == local_stack.process.pid
    environ = Path(f"/proc/{local_stack.process.pid}/environ").read_bytes().split(b"\0")
    assert b"MALLOC_MMAP_THRESHOLD_=131072" in environ
