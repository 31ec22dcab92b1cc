"""The local console's stdout keeps every thread's lines whole, as `print` from many threads would not."""

from __future__ import annotations

import io
import json
import threading

from vidrelay.local.console import WholeLines


def test_records_printed_from_many_threads_at_once_stay_one_per_line() -> None:
    sink = io.StringIO()
    out = WholeLines(sink)
    start = threading.Barrier(8)

    def chatter(n: int) -> None:
        start.wait()
        for i in range(300):
            # print's own way: the text, then the newline, as two writes another thread can come between.
            out.write(json.dumps({"thread": n, "line": i, "pad": "x" * (i % 50)}))
            out.write("\n")
            if i % 7 == 0:
                out.write("stopping…")
                out.write("\n")
                out.flush()

    threads = [threading.Thread(target=chatter, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = sink.getvalue().splitlines()
    records = [json.loads(line) for line in lines if line != "stopping…"]
    assert len(records) == 8 * 300
    assert len(lines) - len(records) == 8 * 43
    for n in range(8):  # and each thread's lines in the order it wrote them
        assert [r["line"] for r in records if r["thread"] == n] == list(range(300))


def test_a_flush_shows_an_unfinished_line_and_the_rest_is_the_stream_s_own() -> None:
    sink = io.StringIO()
    out = WholeLines(sink)
    assert out.write("stopping…") == len("stopping…")
    assert sink.getvalue() == ""  # held until its newline or a flush
    out.flush()
    assert sink.getvalue() == "stopping…"
    assert out.getvalue() == "stopping…"  # type: ignore[attr-defined]  # anything else is the stream's
