"""ringloop.rt channels: channel (MPMC: rendezvous, bounded, unbounded), oneshot,
broadcast, watch -- semantics, cancellation at every await point, plain threads and
second loops on the other side.  Every test runs on stock asyncio and on ringloop."""

import asyncio
import threading

import pytest

from ringloop import rt


def run(loop, coro):
    return loop.run_until_complete(coro)


def _other_loop_thread(loop_factory, coro_fn):
    """Run coro_fn() on a fresh loop of the same kind in a thread; returns
    (thread, result-box)."""
    box = {}

    def target():
        lp = loop_factory()
        try:
            box["result"] = lp.run_until_complete(coro_fn())
        except BaseException as exc:  # noqa: BLE001 - checked by the test
            box["error"] = exc
        finally:
            lp.close()

    t = threading.Thread(target=target)
    t.start()
    return t, box


# ------------------------------------------------------------------------ MPMC basics


@pytest.mark.parametrize("capacity", [0, 1, 3, None])
def test_fifo_and_end_of_stream(loop, capacity):
    async def main():
        tx, rx = rt.channel(capacity)

        async def producer():
            async with tx:
                for i in range(50):
                    await tx.send(i)

        h = rt.spawn(producer())
        got = [x async for x in rx]
        await h
        with pytest.raises(rt.ChannelClosed):
            await rx.recv()
        return got

    assert run(loop, main()) == list(range(50))


def test_capacity_validation(loop):
    with pytest.raises(ValueError):
        rt.channel(-1)
    with pytest.raises(TypeError):
        rt.channel(1.5)
    with pytest.raises(TypeError):
        rt.channel(True)


def test_try_send_try_recv(loop):
    async def main():
        tx, rx = rt.channel(2)
        with pytest.raises(rt.ChannelEmpty):
            rx.try_recv()
        tx.try_send("a")
        tx.try_send("b")
        with pytest.raises(rt.ChannelFull) as info:
            tx.try_send("c")
        assert info.value.item == "c"
        assert isinstance(info.value, rt.WouldBlock)
        assert len(rx) == 2
        assert rx.try_recv() == "a"
        tx.close()
        assert rx.try_recv() == "b"
        with pytest.raises(rt.ChannelClosed):
            rx.try_recv()

    run(loop, main())


def test_rendezvous_try_send_needs_waiting_receiver(loop):
    async def main():
        tx, rx = rt.channel(0)
        with pytest.raises(rt.ChannelFull):
            tx.try_send(1)
        r = rt.spawn(rx.recv())
        await asyncio.sleep(0)
        tx.try_send(2)
        return await r

    assert run(loop, main()) == 2


def test_rendezvous_send_waits_for_receiver(loop):
    async def main():
        tx, rx = rt.channel(0)
        s = rt.spawn(tx.send("x"))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not s.done()
        assert await rx.recv() == "x"
        await s

    run(loop, main())


def test_send_after_receivers_closed_carries_item(loop):
    async def main():
        tx, rx = rt.channel(1)
        rx2 = rx.clone()
        rx.close()
        await tx.send(1)  # rx2 still open
        rx2.close()
        with pytest.raises(rt.ChannelClosed) as info:
            await tx.send(2)
        assert info.value.item == 2
        assert tx.is_closed()

    run(loop, main())


def test_parked_senders_fail_when_receivers_close(loop):
    async def main():
        for capacity in (0, 1):
            tx, rx = rt.channel(capacity)
            if capacity:
                await tx.send("fill")
            s = rt.spawn(tx.send("blocked"))
            await asyncio.sleep(0)
            rx.close()
            with pytest.raises(rt.ChannelClosed) as info:
                await s
            assert info.value.item == "blocked"

    run(loop, main())


def test_parked_receivers_end_when_senders_close(loop):
    async def main():
        tx, rx = rt.channel(None)
        tx2 = tx.clone()
        receivers = [rt.spawn(rx.recv()) for _ in range(3)]
        await asyncio.sleep(0)
        tx.close()
        await asyncio.sleep(0)
        assert not any(r.done() for r in receivers)
        tx2.close()
        for r in receivers:
            with pytest.raises(rt.ChannelClosed):
                await r

    run(loop, main())


def test_closed_handle_errors(loop):
    async def main():
        tx, rx = rt.channel(1)
        tx2 = tx.clone()
        tx.close()
        tx.close()  # idempotent
        with pytest.raises(rt.ChannelClosed):
            await tx.send(1)
        with pytest.raises(rt.ChannelClosed):
            tx.clone()
        await tx2.send(1)
        rx.close()
        with pytest.raises(rt.ChannelClosed):
            await rx.recv()
        assert "closed" in repr(rx)

    run(loop, main())


def test_mpmc_every_item_exactly_once(loop):
    async def main():
        tx, rx = rt.channel(4)
        got = []

        async def producer(base, mine):
            with mine:
                for i in range(200):
                    await mine.send(base + i)

        async def consumer(r):
            async for item in r:
                got.append(item)
                if item % 7 == 0:
                    await asyncio.sleep(0)

        producers = [rt.spawn(producer(k * 1000, tx.clone())) for k in range(4)]
        consumers = [rt.spawn(consumer(rx.clone())) for _ in range(3)]
        tx.close()
        rx.close()
        await asyncio.gather(*producers, *consumers)
        return got

    got = run(loop, main())
    assert sorted(got) == sorted(k * 1000 + i for k in range(4) for i in range(200))


# ------------------------------------------------------------------------ cancellation


@pytest.mark.parametrize("capacity", [0, 1, None])
def test_cancelled_receiver_loses_nothing(loop, capacity):
    """Cancel a parked receiver at the moment an item is handed to it: the item goes
    to the next receiver."""
    async def main():
        tx, rx = rt.channel(capacity)
        r1 = rt.spawn(rx.recv())
        r2 = rt.spawn(rx.recv())
        await asyncio.sleep(0)
        await tx.send("a")  # r1 is woken (not yet run) ...
        r1.cancel()  # ... and cancelled before it runs
        assert await r2 == "a"
        with pytest.raises(asyncio.CancelledError):
            await r1

    run(loop, main())


def test_cancelled_receiver_item_stays_buffered(loop):
    async def main():
        tx, rx = rt.channel(None)
        r1 = rt.spawn(rx.recv())
        await asyncio.sleep(0)
        await tx.send("a")
        r1.cancel()
        with pytest.raises(asyncio.CancelledError):
            await r1
        assert rx.try_recv() == "a"

    run(loop, main())


def test_cancelled_bounded_sender_passes_slot_on(loop):
    async def main():
        tx, rx = rt.channel(1)
        await tx.send(0)
        s1 = rt.spawn(tx.send(1))
        s2 = rt.spawn(tx.send(2))
        await asyncio.sleep(0)
        assert await rx.recv() == 0  # wakes s1 ...
        s1.cancel()  # ... which is cancelled before it runs: s2 gets the slot
        await s2
        with pytest.raises(asyncio.CancelledError):
            await s1
        assert rx.try_recv() == 2
        with pytest.raises(rt.ChannelEmpty):
            rx.try_recv()

    run(loop, main())


def test_cancelled_rendezvous_sender_withdraws_offer(loop):
    async def main():
        tx, rx = rt.channel(0)
        s = rt.spawn(tx.send("never"))
        await asyncio.sleep(0)
        s.cancel()
        with pytest.raises(asyncio.CancelledError):
            await s
        with pytest.raises(rt.ChannelEmpty):
            rx.try_recv()

    run(loop, main())


def test_timeout_around_recv_and_send(loop):
    async def main():
        tx, rx = rt.channel(1)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await rx.recv()
        await tx.send(1)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await tx.send(2)
        assert rx.try_recv() == 1
        with pytest.raises(rt.ChannelEmpty):
            rx.try_recv()
        assert asyncio.current_task().cancelling() == 0

    run(loop, main())


def test_abort_task_blocked_in_channel(loop):
    async def main():
        tx, rx = rt.channel(1)
        h = rt.spawn(rx.recv())
        await asyncio.sleep(0)
        assert rt.abort(h)
        with pytest.raises(rt.TaskAborted):
            await rt.join_task(h)
        await tx.send("kept")
        assert rx.try_recv() == "kept"

    run(loop, main())


# ------------------------------------------------------------------------ threads and loops


def test_threads_to_loop_contention(loop):
    """4 plain threads x 10,000 items into one bounded channel, one async consumer:
    every item exactly once."""
    n_threads, n_items = 4, 10_000

    async def main():
        tx, rx = rt.channel(64)
        senders = [tx.clone() for _ in range(n_threads)]
        tx.close()

        def produce(k, s):
            with s:
                for i in range(n_items):
                    s.send_blocking((k, i))

        threads = [threading.Thread(target=produce, args=(k, s))
                   for k, s in enumerate(senders)]
        for t in threads:
            t.start()
        got = [item async for item in rx]
        for t in threads:
            t.join()
        return got

    got = run(loop, main())
    assert len(got) == n_threads * n_items
    assert set(got) == {(k, i) for k in range(n_threads) for i in range(n_items)}
    for k in range(n_threads):  # each producer's items stay in order
        mine = [i for kk, i in got if kk == k]
        assert mine == list(range(n_items))


def test_loop_to_threads_contention(loop):
    """One async producer, 4 plain-thread consumers (recv_blocking), rendezvous."""
    async def main():
        tx, rx = rt.channel(0)
        got = []
        lock = threading.Lock()

        def consume(r):
            with r:
                for item in r:
                    with lock:
                        got.append(item)

        threads = [threading.Thread(target=consume, args=(rx.clone(),)) for _ in range(4)]
        rx.close()
        for t in threads:
            t.start()
        async with tx:
            for i in range(2000):
                await tx.send(i)
        for t in threads:
            await asyncio.to_thread(t.join)
        return got

    assert sorted(run(loop, main())) == list(range(2000))


def test_blocking_timeouts_and_misuse(loop):
    tx, rx = rt.channel(1)
    with pytest.raises(TimeoutError):
        rx.recv_blocking(timeout=0.01)
    tx.send_blocking(1)
    with pytest.raises(TimeoutError):
        tx.send_blocking(2, timeout=0.01)
    assert rx.recv_blocking(timeout=1) == 1

    async def main():
        with pytest.raises(RuntimeError):
            rx.recv_blocking()

    run(loop, main())


def test_two_loops_in_two_threads(loop, loop_factory):
    """A producer loop in another thread, ping-pong through two channels."""
    async def main():
        req_tx, req_rx = rt.channel(0)
        resp_tx, resp_rx = rt.channel(1)

        async def server():
            async with resp_tx:
                async for x in req_rx:
                    await resp_tx.send(x * 2)
            return "done"

        t, box = _other_loop_thread(loop_factory, server)
        out = []
        async with req_tx:
            for i in range(300):
                await req_tx.send(i)
                out.append(await resp_rx.recv())
        with pytest.raises(rt.ChannelClosed):
            await resp_rx.recv()
        await asyncio.to_thread(t.join)
        assert box == {"result": "done"}
        return out

    assert run(loop, main()) == [i * 2 for i in range(300)]


# ------------------------------------------------------------------------ oneshot


def test_oneshot(loop):
    async def main():
        tx, rx = rt.oneshot()
        with pytest.raises(rt.ChannelEmpty):
            rx.try_recv()
        loop_ = asyncio.get_running_loop()
        loop_.call_later(0.001, tx.send, 42)
        assert await rx == 42
        assert rx.try_recv() == 42
        with pytest.raises(rt.ChannelClosed):
            tx.send(43)

        tx, rx = rt.oneshot()
        tx.send_exception(ValueError("boom"))
        with pytest.raises(ValueError):
            await rx

        tx, rx = rt.oneshot()
        w = rt.spawn(rx.recv())
        await asyncio.sleep(0)
        tx.close()
        with pytest.raises(rt.ChannelClosed):
            await w

        tx, rx = rt.oneshot()
        rx.close()
        assert tx.is_closed()
        with pytest.raises(rt.ChannelClosed) as info:
            tx.send("x")
        assert info.value.item == "x"

    run(loop, main())


def test_oneshot_from_thread(loop):
    async def main():
        tx, rx = rt.oneshot()
        t = threading.Thread(target=tx.send, args=("hi",))
        t.start()
        v = await rx
        t.join()
        tx2, rx2 = rt.oneshot()  # the other way round: loop sends, a thread blocks
        got = []
        t = threading.Thread(target=lambda: got.append(rx2.recv_blocking(timeout=30)))
        t.start()
        await asyncio.sleep(0.001)
        tx2.send("back")
        await asyncio.to_thread(t.join)
        assert got == ["back"]
        return v

    assert run(loop, main()) == "hi"
    with pytest.raises(TimeoutError):
        rt.oneshot()[1].recv_blocking(timeout=0.001)


def test_oneshot_cancelled_receiver(loop):
    async def main():
        tx, rx = rt.oneshot()
        w = rt.spawn(rx.recv())
        await asyncio.sleep(0)
        w.cancel()
        with pytest.raises(asyncio.CancelledError):
            await w
        tx.send(1)
        assert await rx == 1

    run(loop, main())


# ------------------------------------------------------------------------ broadcast


def test_broadcast_fan_out_and_lag(loop):
    async def main():
        tx, rx1 = rt.broadcast(2)
        rx2 = tx.subscribe()
        assert tx.send("a") == 2
        assert await rx1.recv() == "a"
        tx.send("b")
        tx.send("c")
        tx.send("d")  # rx1 missed "b"; rx2 missed "a", "b"
        with pytest.raises(rt.Lagged) as info:
            await rx1.recv()
        assert info.value.skipped == 1
        assert [await rx1.recv(), await rx1.recv()] == ["c", "d"]
        with pytest.raises(rt.Lagged) as info:
            await rx2.recv()
        assert info.value.skipped == 2
        assert rx2.try_recv() == "c"
        late = tx.subscribe()
        with pytest.raises(rt.ChannelEmpty):
            late.try_recv()
        tx.close()
        assert [x async for x in rx2] == ["d"]
        with pytest.raises(rt.ChannelClosed):
            await late.recv()
        for r in (rx1, rx2, late):
            r.close()

    run(loop, main())


def test_broadcast_waiters_and_no_receivers(loop):
    with pytest.raises(rt.ChannelClosed):
        tx, rx = rt.broadcast(1)
        rx.close()
        tx.send(1)
    with pytest.raises(ValueError):
        rt.broadcast(0)
    run(loop, _broadcast_waiters())


async def _broadcast_waiters():
    tx, rx = rt.broadcast(4)
    waiters = [rt.spawn(r.recv()) for r in (rx, tx.subscribe(), tx.subscribe())]
    await asyncio.sleep(0)
    assert tx.send(7) == 3
    assert [await w for w in waiters] == [7, 7, 7]
    w = rt.spawn(rx.recv())
    await asyncio.sleep(0)
    tx.send(8)
    w.cancel()
    with pytest.raises(asyncio.CancelledError):
        await w
    assert await rx.recv() == 8


def test_broadcast_from_thread(loop):
    async def main():
        tx, rx = rt.broadcast(10_000)
        r2 = tx.subscribe()

        def produce():
            with tx:
                for i in range(5000):
                    tx.send(i)

        t = threading.Thread(target=produce)
        t.start()
        a = [x async for x in rx]
        b = [x async for x in r2]
        t.join()
        return a, b

    a, b = run(loop, main())
    assert a == b == list(range(5000))


# ------------------------------------------------------------------------ watch


def test_watch(loop):
    async def main():
        tx, rx = rt.watch(0)
        assert rx.borrow() == 0
        assert not rx.has_changed()
        seen = []

        async def follower():
            async for v in rx.clone():
                seen.append(v)
                if v == 3:
                    return

        f = rt.spawn(follower())
        await asyncio.sleep(0)
        for v in (1, 2, 3):
            tx.send(v)
            await asyncio.sleep(0)
        await f
        assert seen == [0, 1, 2, 3]
        assert rx.has_changed()
        await rx.changed()
        assert rx.borrow_and_update() == 3
        tx.send_modify(lambda v: v + 10)
        assert tx.borrow() == 13
        r2 = tx.subscribe()
        w = rt.spawn(r2.wait_for(lambda v: v > 20))
        await asyncio.sleep(0)
        tx.send(15)
        tx.send(21)
        assert await w == 21
        assert rx.borrow_and_update() == 21
        c = rt.spawn(rx.changed())
        await asyncio.sleep(0)
        c.cancel()
        with pytest.raises(asyncio.CancelledError):
            await c
        tx.send(22)
        tx.close()
        await rx.changed()  # the unseen 22 first
        with pytest.raises(rt.ChannelClosed):
            await rx.changed()
        with pytest.raises(rt.ChannelClosed):
            tx.send(0)

    run(loop, main())


def test_watch_across_loops(loop, loop_factory):
    async def main():
        tx, rx = rt.watch("init")

        async def other():
            r = rx.clone()
            return await r.wait_for(lambda v: v == "go")

        t, box = _other_loop_thread(loop_factory, other)
        for i in range(5):
            tx.send(i)
            await asyncio.sleep(0.001)
        tx.send("go")
        await asyncio.to_thread(t.join)
        return box

    assert run(loop, main()) == {"result": "go"}


@pytest.mark.parametrize("capacity", [0, 2, None])
def test_recv_many(loop, capacity):
    async def main():
        tx, rx = rt.channel(capacity)
        senders = [rt.spawn(tx.send(i)) for i in range(6)]
        await asyncio.sleep(0)
        got = []
        while len(got) < 6:
            batch = await rx.recv_many(4)
            assert 1 <= len(batch) <= 4
            got += batch
        await asyncio.gather(*senders)
        tx.close()
        with pytest.raises(rt.ChannelClosed):
            await rx.recv_many(4)
        with pytest.raises(ValueError):
            await rx.recv_many(0)
        return got

    # six concurrent senders: every item exactly once (their relative order is not
    # a channel guarantee, each sender's own order is)
    assert sorted(run(loop, main())) == list(range(6))
