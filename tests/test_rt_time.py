"""ringloop.rt time: sleep_until, yield_now, timeout/timeout_at, move_on_after,
with_timeout, interval and its missed-tick behaviours (deadline logic tested on the
loop clock, never on wall-clock timing)."""

import asyncio

import pytest

from ringloop import rt


def run(loop, coro):
    return loop.run_until_complete(coro)


def test_sleep_until_and_now(loop):
    async def main():
        lp = asyncio.get_running_loop()
        t0 = rt.now()
        assert t0 <= lp.time()
        await rt.sleep_until(lp.time() + 0.005)
        assert rt.now() >= t0 + 0.005
        await rt.sleep_until(0)  # in the past: returns at once
        await rt.sleep(0)

    run(loop, main())


def test_yield_now_lets_others_run(loop):
    async def main():
        seen = []
        asyncio.get_running_loop().call_soon(seen.append, "other")
        await rt.yield_now()
        return seen

    assert run(loop, main()) == ["other"]


def test_timeout_is_asyncio_timeout(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with rt.timeout(0.001):
                await asyncio.sleep(10)
        with pytest.raises(TimeoutError):
            async with rt.timeout_at(asyncio.get_running_loop().time() + 0.001):
                await asyncio.sleep(10)
        async with rt.timeout(None) as cm:
            cm.reschedule(None)
        assert asyncio.current_task().cancelling() == 0

    run(loop, main())


def test_move_on_after(loop):
    async def main():
        reached = []
        async with rt.move_on_after(0.001) as scope:
            await asyncio.sleep(10)
            reached.append(True)
        assert scope.cancelled_caught and scope.expired() and not reached
        async with rt.move_on_after(10) as scope:
            await asyncio.sleep(0)
        assert not scope.cancelled_caught
        async with rt.move_on_at(asyncio.get_running_loop().time() + 0.001) as scope:
            await asyncio.sleep(10)
        assert scope.cancelled_caught
        with pytest.raises(KeyError):  # other errors pass through
            async with rt.move_on_after(10):
                raise KeyError("k")
        with pytest.raises(TimeoutError):  # a TimeoutError of the body is not ours
            async with rt.move_on_after(10):
                raise TimeoutError
        assert asyncio.current_task().cancelling() == 0

    run(loop, main())


def test_move_on_after_does_not_swallow_outer_cancel(loop):
    async def main():
        async def body():
            async with rt.move_on_after(10):
                await asyncio.sleep(10)

        t = rt.spawn(body())
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):  # an outer timeout fires first
                async with rt.move_on_after(10) as scope:
                    await asyncio.sleep(10)
        assert not scope.cancelled_caught

    run(loop, main())


def test_with_timeout(loop):
    async def main():
        assert await rt.with_timeout(10, asyncio.sleep(0, "ok")) == "ok"
        with pytest.raises(TimeoutError):
            await rt.with_timeout(0.001, asyncio.sleep(10))
        h = rt.spawn(asyncio.sleep(10))
        with pytest.raises(TimeoutError):
            await rt.with_timeout(0.001, h)
        assert h.cancelled()

    run(loop, main())


@pytest.mark.parametrize("behavior,expected", [
    # a tick due at 10.0 with period 1.0 delivered late at 12.3
    (rt.Burst, 11.0),
    (rt.Delay, 13.3),
    (rt.Skip, 13.0),
])
def test_missed_tick_rules(behavior, expected):
    assert behavior.next_deadline(10.0, 12.3, 1.0) == pytest.approx(expected)
    iv = rt.interval(1.0, missed_tick=behavior.value)
    assert iv.next_deadline(10.0, 12.3) == pytest.approx(expected)
    assert iv.next_deadline(10.0, 10.001) == pytest.approx(11.0)  # on time


def test_interval_ticks_on_schedule(loop):
    async def main():
        lp = asyncio.get_running_loop()
        iv = rt.interval(0.002)
        first = await iv.tick()  # immediate
        ticks = [first]
        async for t in iv:
            assert lp.time() >= t
            ticks.append(t)
            if len(ticks) == 4:
                break
        return ticks

    ticks = run(loop, main())
    assert [round(b - a, 9) for a, b in zip(ticks, ticks[1:])] == [0.002] * 3


@pytest.mark.parametrize("behavior", ["burst", "delay", "skip"])
def test_interval_after_a_stall(loop, behavior):
    """Stall the loop past several ticks, then check the deadlines the interval hands
    out follow the chosen behaviour (ordering and grid checks only)."""
    async def main():
        lp = asyncio.get_running_loop()
        start = lp.time()
        iv = rt.interval(0.005, start=start, missed_tick=behavior)
        assert await iv.tick() == start
        await asyncio.sleep(0.02)  # miss about 4 ticks
        stalled_at = lp.time()
        t1 = await iv.tick()
        t2 = await iv.tick()
        return start, t1, stalled_at, t2

    start, t1, stalled_at, t2 = run(loop, main())
    assert t1 == pytest.approx(start + 0.005)  # the missed tick is delivered at once
    if behavior == "burst":
        assert t2 == pytest.approx(start + 0.010)  # next on the grid, already due
    elif behavior == "delay":
        assert t2 >= stalled_at + 0.005 - 1e-9  # a full period after the late tick
    else:
        assert t2 > stalled_at - 0.005
        steps = (t2 - start) / 0.005
        assert steps == pytest.approx(round(steps))  # still on the original grid


def test_interval_reset_and_validation(loop):
    with pytest.raises(ValueError):
        rt.interval(0)
    with pytest.raises(ValueError):
        rt.interval(1, missed_tick="sometimes")

    async def main():
        iv = rt.interval(0.001)
        await iv.tick()
        iv.reset()
        before = asyncio.get_running_loop().time()
        t = await iv.tick()
        assert t >= before

    run(loop, main())
