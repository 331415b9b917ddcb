"""The command line's progress: plain lines off a terminal, a count that never runs past its total."""

from __future__ import annotations

import io

from invoice_archiver.cli.progress import track


def test_a_count_past_its_announced_total_grows_the_total() -> None:
    # Given progress announced for one invoice, on a stream that is not a terminal
    stream = io.StringIO()

    # When two are done (a message an earlier run left in the queue was drained too)
    with track("archiving", 1, unit="invoices", stream=stream, interval=0) as tracker:
        tracker.advance()
        tracker.advance()

    # Then no line ever says more were done than the total
    lines = stream.getvalue().splitlines()
    assert lines[-1] == "archiving: 2/2 invoices"
    assert not any(line.startswith("archiving: 2/1") for line in lines)


def test_a_total_set_later_and_a_note_are_shown() -> None:
    stream = io.StringIO()
    with track("listing", unit="queries", stream=stream, interval=3600) as tracker:
        tracker.set_total(6)
        tracker.set_completed(6)
        tracker.note("24 invoices, 12 to archive")
    assert stream.getvalue().splitlines()[-1] == "listing: 6/6 queries, 24 invoices, 12 to archive"
