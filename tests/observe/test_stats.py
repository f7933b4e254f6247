"""``WorkerStats`` over shared memory: counting in a forked child, summing, the backend
table and its ``other`` entry, settling a dead worker's open gauges, a slot taken over."""

from __future__ import annotations

import os

from mailgate.process.stats_area import StatsArea
from mailgate.proxy.stats import BACKEND_ENTRIES, WorkerStats, add


def test_a_child_counts_into_its_slot_and_the_parent_sums():
    area = StatsArea(4)
    slot = area.take()
    pid = os.fork()
    if pid == 0:  # the worker: counts, exits without cleanup
        stats = WorkerStats(area.view(slot))
        for _ in range(3):
            stats.session_opened("imap")
            stats.backend_opened("10.0.0.1:143")
        stats.relay_started("imap")
        stats.session_ended("imap", "proxied")
        stats.backend_closed("10.0.0.1:143")
        stats.backend_error("timeout", "10.0.0.2:143")
        os._exit(0)
    area.hold(pid, slot)
    os.waitpid(pid, 0)
    mine = WorkerStats(area.view(area.take()))  # another worker, in this process
    area.hold(os.getpid(), 1)
    mine.session_opened("pop3")
    total = area.snapshot()
    assert total["sessions"]["imap"]["proxied"] == 1
    assert total["sessions_active"] == {"imap": 2, "pop3": 1, "smtp": 0}
    assert total["sessions_relaying"]["imap"] == 0
    assert total["backends"] == {"10.0.0.1:143": {"sessions": 3, "active": 2, "errors": 0},
                                 "10.0.0.2:143": {"sessions": 0, "active": 0, "errors": 1}}
    assert total["backend_errors"]["timeout"] == 1

    area.release(pid)  # reaped: what it left open ends as "lost"
    total = area.snapshot()
    assert total["sessions"]["imap"]["lost"] == 2 and total["sessions_active"]["imap"] == 0
    assert total["backends"]["10.0.0.1:143"]["active"] == 0
    assert total["backend_connections"] == 0

    assert area.take() == slot  # the next worker counts on in the freed slot
    again = WorkerStats(area.view(slot))
    again.backend_opened("10.0.0.1:143")  # its old entry, found again
    assert area.snapshot()["backends"]["10.0.0.1:143"]["sessions"] == 4


def test_backends_beyond_the_table_count_as_other():
    stats = WorkerStats()
    for n in range(BACKEND_ENTRIES + 5):
        stats.backend_opened("10.0.%d.%d:143" % (n // 256, n % 256))
    backends = stats.snapshot()["backends"]
    assert len(backends) == BACKEND_ENTRIES
    assert backends["other"]["sessions"] == 6


def test_add_takes_keys_of_either_side():
    assert add({"a": 1, "b": {"x": 2}}, {"b": {"x": 3, "y": 4}, "c": 5}) == {
        "a": 1, "b": {"x": 5, "y": 4}, "c": 5}


def test_a_full_area_gives_no_slot():
    area = StatsArea(2)
    area.hold(1, area.take())
    area.hold(2, area.take())
    assert area.take() is None
