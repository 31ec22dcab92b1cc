"""`vidrelay local` ends within its grace after a stop signal, even when a thread would hold the interpreter's exit:
every thread's stack is printed and the exit status says the stop was not clean."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent(
    """
    import threading, time
    from vidrelay.commands.local import end_within

    threading.Thread(target=time.sleep, args=(600,), name="stuck", daemon=False).start()
    end_within(1.0)
    print("stopped", flush=True)
    """
)


def test_a_stop_held_by_a_thread_ends_within_the_grace_with_every_thread_s_stack() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 15
    assert done.returncode == 1
    assert done.stdout == "stopped\n"
    assert "Timeout (0:00:01)!" in done.stderr and "Thread" in done.stderr


def test_a_clean_stop_within_the_grace_exits_zero() -> None:
    script = "from vidrelay.commands.local import end_within\nend_within(5.0)\nprint('stopped')\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, "stopped\n", "")
