"""Session timeouts on one event-loop timer.

A loop timer handle per session costs an allocation, a heap insertion and, on
uvloop, a libuv handle closed in a later loop iteration: about 7 µs of CPU per
connection, measured on a resumed TLS handshake (bench/RESULTS.md).  Here a session
(any ``Timed`` object) with an armed timeout sits in a *slot* of ``SLOT`` seconds
(its due time rounded up, so a timeout never fires early), and one loop timer, set
for the earliest slot, expires the timeouts of the slots that are due.

Re-arming to a later time (every command, every relayed read) only records the new
due time: the session stays in its earlier slot and, when that slot comes, moves
itself to the slot of its due time.  A cancelled timeout leaves its slot at once,
so a closed session is not kept alive by the wheel.
"""

from __future__ import annotations

import asyncio
import heapq

__all__ = ["KEEP_EMPTY", "SLOT", "Timed", "TimerWheel"]

SLOT = 0.05  # seconds: how late a timeout may fire, at most (docs/differences.md#timeouts)
# Emptied slots are kept (up to this many) for the owners armed next in the same
# 50 ms, who would otherwise make each a new one; beyond it they go at once.
KEEP_EMPTY = 1024


class TimerWheel:
    """The slots of one event loop's timeouts and the one loop timer behind them."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._slots: dict[int, dict[Timed, None]] = {}  # slot -> its owners, in order
        self._heap: list[int] = []  # slot numbers, some perhaps of slots gone already
        self._handle: asyncio.TimerHandle | None = None
        self._handle_slot = 0

    def __len__(self) -> int:
        """Timeouts armed now."""
        return sum(len(bucket) for bucket in self._slots.values())

    def _add(self, owner: Timed, slot: int) -> None:
        bucket = self._slots.get(slot)
        if bucket is None:
            bucket = self._slots[slot] = {}
            heapq.heappush(self._heap, slot)
            if self._handle is None or slot < self._handle_slot:
                self._schedule(slot)
        bucket[owner] = None

    def _discard(self, owner: Timed, slot: int) -> None:
        bucket = self._slots.get(slot)
        if bucket is not None:
            bucket.pop(owner, None)
            if not bucket and len(self._slots) > KEEP_EMPTY:
                del self._slots[slot]
                if len(self._heap) > 2 * len(self._slots) + 64:
                    # emptied slots pile up in the heap under a high connection rate
                    self._heap = list(self._slots)
                    heapq.heapify(self._heap)

    def _schedule(self, slot: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle_slot = slot
        # a millisecond late: the loop rounds its timers to milliseconds, either way
        self._handle = self.loop.call_at(slot * SLOT + 0.001, self._expire)

    def _expire(self) -> None:
        self._handle = None
        now = int(self.loop.time() / SLOT)  # slots whose time has come
        heap, slots = self._heap, self._slots
        while heap and heap[0] <= now:
            bucket = slots.pop(heapq.heappop(heap), None)
            if not bucket:
                continue
            for owner in bucket:
                owner._slot = None
                try:
                    owner._expire(now)
                except Exception as exc:  # noqa: BLE001 - one owner's failure must not lose the others' timeouts
                    self.loop.call_exception_handler({
                        "message": "Exception in a timeout callback", "exception": exc})
        if heap:
            self._schedule(heap[0])

    def close(self) -> None:
        """Drop every timeout and the loop timer (the loop is going away)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for bucket in self._slots.values():
            for owner in bucket:
                owner._slot = None
        self._slots.clear()
        self._heap.clear()


class Timed:
    """Mixin: one timeout for an object, on a ``TimerWheel``.

    The owner sets ``self._wheel`` and implements ``timeout_expired()``;
    ``arm_timeout(seconds)`` sets (or moves) the due time, ``disarm_timeout()`` stops it
    cheaply while the owner lives, ``cancel_timeout()`` also takes the owner off the
    wheel, for an owner that ends.  The wheel holds the owner itself: no handle or
    callback object per owner, and no reference cycle through one.
    """

    __slots__ = ()

    _wheel: TimerWheel
    _due: float | None = None
    _slot: int | None = None

    def timeout_expired(self) -> None:
        raise NotImplementedError

    @property
    def timeout_armed(self) -> bool:
        return self._due is not None

    def arm_timeout(self, seconds: float) -> None:
        """Due ``seconds`` from now, replacing any earlier or later due time."""
        wheel = self._wheel
        due = self._due = wheel.loop.time() + seconds
        slot = -int(-due // SLOT)  # rounded up: never early
        if self._slot is None:
            self._slot = slot
            wheel._add(self, slot)
        elif slot < self._slot:
            wheel._discard(self, self._slot)
            self._slot = slot
            wheel._add(self, slot)
        # else: a later time is only recorded; the slot moves the owner on

    def disarm_timeout(self) -> None:
        """Not due any more (it may be armed again)."""
        self._due = None

    def cancel_timeout(self) -> None:
        """Not due any more, and off the wheel: the wheel keeps nothing of the owner."""
        self._due = None
        if self._slot is not None:
            self._wheel._discard(self, self._slot)
            self._slot = None

    def _expire(self, now: int) -> None:
        """The slot it sat in has come (``now`` is the current slot)."""
        due = self._due
        if due is None:
            return
        if self._wheel.loop.time() < due:
            # on to the slot of the due time; a later one than now's in any case, so
            # that a due time within this millisecond cannot keep it in this pass
            self._slot = max(-int(-due // SLOT), now + 1)
            self._wheel._add(self, self._slot)
            return
        self._due = None
        self.timeout_expired()
