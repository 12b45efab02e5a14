"""ringloop.rt combinators: join, select, race, as_completed -- results, errors, and
structured cleanup (no loser left running, also when the caller is cancelled)."""

import asyncio

import pytest

from ringloop import rt


def run(loop, coro):
    return loop.run_until_complete(coro)


async def value(v, delay=0.0):
    await asyncio.sleep(delay)
    return v


async def fail(exc, delay=0.0):
    await asyncio.sleep(delay)
    raise exc


class Tracker:
    """Coroutines that record whether they finished or were cancelled."""

    def __init__(self):
        self.cancelled = []
        self.running = set()

    async def job(self, name, delay, result=None):
        self.running.add(name)
        try:
            await asyncio.sleep(delay)
            return name if result is None else result
        except asyncio.CancelledError:
            self.cancelled.append(name)
            raise
        finally:
            self.running.discard(name)


def test_join(loop):
    async def main():
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, "f")
        task = rt.spawn(value("t"))
        assert await rt.join(value(1), task, fut) == (1, "t", "f")
        assert await rt.join() == ()
        got = await rt.join(value(1), fail(KeyError("k")), return_exceptions=True)
        assert got[0] == 1 and isinstance(got[1], KeyError)

    run(loop, main())


def test_join_failure_cancels_rest(loop):
    async def main():
        tr = Tracker()
        with pytest.raises(ExceptionGroup) as info:
            await rt.join(tr.job("a", 10), fail(ValueError("v"), 0.001), tr.job("b", 10))
        assert [type(e) for e in info.value.exceptions] == [ValueError]
        assert sorted(tr.cancelled) == ["a", "b"] and not tr.running

    run(loop, main())


def test_select_first_wins_losers_cancelled_and_awaited(loop):
    async def main():
        tr = Tracker()
        i, v = await rt.select(tr.job("slow", 10), tr.job("fast", 0.001), tr.job("mid", 5))
        assert (i, v) == (1, "fast")
        assert sorted(tr.cancelled) == ["mid", "slow"]
        assert not tr.running  # awaited: their finally blocks ran before select returned

    run(loop, main())


def test_select_accepts_tasks_futures_handles(loop):
    async def main():
        lp = asyncio.get_running_loop()
        fut = lp.create_future()
        h = rt.spawn(value("h", 10))
        t = lp.create_task(value("t", 10))
        lp.call_later(0.001, fut.set_result, "fut")
        assert await rt.select(h, t, fut) == (2, "fut")
        assert h.cancelled() and t.cancelled()

    run(loop, main())


def test_select_winner_exception_is_raised(loop):
    async def main():
        tr = Tracker()
        with pytest.raises(KeyError):
            await rt.select(tr.job("a", 10), fail(KeyError("k"), 0.001))
        assert tr.cancelled == ["a"]

    run(loop, main())


def test_select_biased_prefers_argument_order(loop):
    async def main():
        lp = asyncio.get_running_loop()
        for _ in range(20):
            futs = [lp.create_future() for _ in range(3)]
            for i, f in enumerate(futs):
                f.set_result(i)
            assert await rt.select(*futs, biased=True) == (0, 0)
        # unbiased: every ready one can win (fairness); over many rounds, more than one
        winners = set()
        for _ in range(200):
            futs = [lp.create_future() for _ in range(3)]
            for i, f in enumerate(futs):
                f.set_result(i)
            winners.add((await rt.select(*futs))[0])
        assert len(winners) > 1

    run(loop, main())


def test_select_caller_cancelled_cancels_everything(loop):
    async def main():
        tr = Tracker()
        s = rt.spawn(rt.select(tr.job("a", 10), tr.job("b", 10)))
        await asyncio.sleep(0.001)
        s.cancel()
        with pytest.raises(asyncio.CancelledError):
            await s
        assert sorted(tr.cancelled) == ["a", "b"] and not tr.running
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await rt.select(tr.job("c", 10))
        assert "c" in tr.cancelled

    run(loop, main())


def test_select_errors(loop):
    async def main():
        with pytest.raises(ValueError):
            await rt.select()
        with pytest.raises(TypeError):
            await rt.select(1)

    run(loop, main())


def test_race_first_success(loop):
    async def main():
        tr = Tracker()
        v = await rt.race(fail(ValueError("x")), tr.job("slow", 0.01), tr.job("lazy", 10))
        assert v == "slow"
        assert tr.cancelled == ["lazy"]
        with pytest.raises(ExceptionGroup) as info:
            await rt.race(fail(ValueError("a")), fail(KeyError("b"), 0.001))
        assert [type(e) for e in info.value.exceptions] == [ValueError, KeyError]

    run(loop, main())


def test_as_completed(loop):
    async def main():
        order = [t.result() async for t in rt.as_completed(
            [value("c", 0.03), value("a", 0.0), value("b", 0.01)])]
        assert order == ["a", "b", "c"]
        running = peak = 0

        async def job(i):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.001)
            running -= 1
            return i

        got = sorted([await t async for t in rt.as_completed(
            (job(i) for i in range(10)), limit=2)])
        assert got == list(range(10)) and peak == 2
        tr = Tracker()
        async with rt.as_completed([tr.job("x", 0), tr.job("y", 10), value(1)],
                                   limit=2) as it:
            async for t in it:
                assert t.result() == "x"
                break
        assert tr.cancelled == ["y"] and not tr.running

    run(loop, main())
