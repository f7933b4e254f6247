"""The session timeouts on one loop timer: never early, at most a slot late, moved
lazily, cancelled at once, one owner's failure isolated from the others'."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
import uvloop
from mailgate.proxy.timers import KEEP_EMPTY, SLOT, Timed, TimerWheel

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def run(request):
    loop = LOOPS[request.param]()
    yield loop.run_until_complete
    loop.close()


class Owner(Timed):
    def __init__(self, wheel: TimerWheel, fired: list, name: str = ""):
        self._wheel = wheel
        self.fired = fired
        self.name = name

    def timeout_expired(self) -> None:
        self.fired.append((self.name, self._wheel.loop.time()))


def test_fires_once_never_early_at_most_a_slot_late(run):
    async def main():
        loop = asyncio.get_running_loop()
        wheel, fired = TimerWheel(loop), []
        owners = [Owner(wheel, fired, str(i)) for i in range(5)]
        started = loop.time()
        for i, owner in enumerate(owners):
            owner.arm_timeout(0.1 + i * 0.03)
        assert len(wheel) == 5
        await asyncio.sleep(0.5)
        assert [name for name, _ in fired] == ["0", "1", "2", "3", "4"]
        for i, (_, at) in enumerate(fired):
            due = started + 0.1 + i * 0.03
            assert due <= at < due + SLOT + 0.05
        assert len(wheel) == 0 and not any(o.timeout_armed for o in owners)

    run(main())


def test_a_later_time_moves_it_on_and_an_earlier_one_brings_it_forward(run):
    async def main():
        loop = asyncio.get_running_loop()
        wheel, fired = TimerWheel(loop), []
        later, sooner = Owner(wheel, fired, "later"), Owner(wheel, fired, "sooner")
        started = loop.time()
        later.arm_timeout(0.1)
        later.arm_timeout(0.3)  # re-armed later: only recorded, the slot moves it on
        sooner.arm_timeout(1.0)
        sooner.arm_timeout(0.15)  # re-armed sooner: into the earlier slot at once
        await asyncio.sleep(0.5)
        assert [name for name, _ in fired] == ["sooner", "later"]
        assert fired[0][1] >= started + 0.15 and fired[1][1] >= started + 0.3

    run(main())


def test_disarm_stops_it_and_cancel_lets_go_of_the_owner(run):
    async def main():
        loop = asyncio.get_running_loop()
        wheel, fired = TimerWheel(loop), []
        disarmed, cancelled = Owner(wheel, fired, "disarmed"), Owner(wheel, fired, "cancelled")
        disarmed.arm_timeout(0.05)
        disarmed.disarm_timeout()
        cancelled.arm_timeout(0.05)
        cancelled.cancel_timeout()
        assert len(wheel) == 1  # the disarmed one waits in its slot, to be dropped there
        gone = weakref.ref(cancelled)
        del cancelled
        gc.collect()
        assert gone() is None  # the wheel holds nothing of a cancelled owner
        await asyncio.sleep(0.2)
        assert fired == [] and len(wheel) == 0
        disarmed.arm_timeout(0.01)  # armed again after all
        await asyncio.sleep(0.15)
        assert [name for name, _ in fired] == ["disarmed"]

    run(main())


def test_one_failing_owner_does_not_lose_the_others(run):
    class Failing(Owner):
        def timeout_expired(self) -> None:
            raise RuntimeError("boom")

    async def main():
        loop = asyncio.get_running_loop()
        reported = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context["exception"]))
        wheel, fired = TimerWheel(loop), []
        Failing(wheel, fired, "failing").arm_timeout(0.05)
        Owner(wheel, fired, "other").arm_timeout(0.05)
        await asyncio.sleep(0.2)
        assert [name for name, _ in fired] == ["other"]
        assert [str(e) for e in reported] == ["boom"]

    run(main())


def test_emptied_slots_do_not_pile_up(run):
    async def main():
        wheel, fired = TimerWheel(asyncio.get_running_loop()), []
        # many owners, each cancelled at once (connections that come and go quickly)
        for i in range(5000):
            owner = Owner(wheel, fired)
            owner.arm_timeout(60 + i * SLOT)
            owner.cancel_timeout()
        assert len(wheel) == 0
        assert len(wheel._slots) <= KEEP_EMPTY + 1 and len(wheel._heap) <= 2 * (KEEP_EMPTY + 1) + 64
        wheel.close()


def test_an_emptied_slot_serves_the_next_owners(run):
    async def main():
        wheel, fired = TimerWheel(asyncio.get_running_loop()), []
        first = Owner(wheel, fired, "first")
        first.arm_timeout(0.3)
        first.cancel_timeout()
        assert len(wheel._slots) == 1 and len(wheel._heap) == 1  # kept, empty
        second = Owner(wheel, fired, "second")
        second.arm_timeout(0.3)  # most likely the same slot: no new one
        assert len(wheel._heap) <= 2
        await asyncio.sleep(0.5)
        assert [name for name, _ in fired] == ["second"] and not wheel._slots

    run(main())

    run(main())


def test_close_drops_everything(run):
    async def main():
        wheel, fired = TimerWheel(asyncio.get_running_loop()), []
        owner = Owner(wheel, fired)
        owner.arm_timeout(0.01)
        wheel.close()
        await asyncio.sleep(0.1)
        assert fired == [] and len(wheel) == 0

    run(main())
