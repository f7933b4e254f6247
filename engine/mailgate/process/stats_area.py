"""The workers' counters in memory the master shares with them: ``StatsArea``.

The master maps it (anonymous, shared) before it forks the first worker, as it
makes the TLS session zones (tls/zones.py): every worker it forks sees the same
pages.  The area is cut into slots of ``WorkerStats.SIZE`` bytes; each worker counts
into its own slot (``WorkerStats`` over it), so no count needs a lock, and the
master (its status server) reads them all and sums them.  A slot outlives its
worker: the master settles what the dead worker had open and hands the slot to the
next worker it forks, which counts on from there, so the totals never go back.
"""

from __future__ import annotations

import mmap
import threading

from mailgate.proxy.stats import WorkerStats, add

__all__ = ["StatsArea"]


class StatsArea:
    """``slots`` worker slots in one shared mapping, and which worker holds which."""

    def __init__(self, slots: int):
        self.slots = slots
        self._memory = mmap.mmap(-1, slots * WorkerStats.SIZE,
                                 flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        self._view = memoryview(self._memory)
        self._holders: dict[int, int] = {}  # worker pid -> slot
        self._used: set[int] = set()  # slots ever given out (the others are all zero)
        self._lock = threading.Lock()  # the status server reads from its own threads

    def view(self, slot: int) -> memoryview:
        """The bytes of ``slot`` (for the worker's ``WorkerStats``)."""
        size = WorkerStats.SIZE
        return self._view[slot * size:(slot + 1) * size]

    def take(self) -> int | None:
        """A free slot for the worker about to be forked (the lowest), or None when
        every slot is held."""
        with self._lock:
            held = set(self._holders.values())
            return next((slot for slot in range(self.slots) if slot not in held), None)

    def hold(self, pid: int, slot: int) -> None:
        """Worker ``pid`` counts into ``slot`` from now."""
        with self._lock:
            self._holders[pid] = slot
            self._used.add(slot)

    def release(self, pid: int) -> None:
        """Worker ``pid`` has ended: settle what it left open, free its slot."""
        with self._lock:
            slot = self._holders.pop(pid, None)
        if slot is not None:
            WorkerStats(self.view(slot)).settle()

    def holders(self) -> dict[int, int]:
        """Worker pid -> slot, of the workers alive."""
        with self._lock:
            return dict(self._holders)

    def snapshot(self) -> dict:
        """The sum over every slot ever used (``WorkerStats.snapshot()``'s shape)."""
        with self._lock:
            used = sorted(self._used)
        total = WorkerStats().snapshot()
        for slot in used:
            total = add(total, WorkerStats(self.view(slot)).snapshot())
        return total
