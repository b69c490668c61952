"""The client's queue (``HandOffQueue``): SimpleQueue's behaviour, and no lost wake-ups."""

from __future__ import annotations

import queue
import random
import threading

import pytest

from pumpsync._handoff import HandOffQueue

_DONE = object()


def test_fifo_and_the_simple_queue_methods() -> None:
    q: HandOffQueue[int] = HandOffQueue()
    assert q.empty() and q.qsize() == 0
    for i in range(5):
        q.put(i)
    q.put_nowait(5)
    q.append(6)
    assert q.qsize() == 7 and not q.empty()
    assert [q.get(), q.get_nowait(), q.get(timeout=0)] == [0, 1, 2]
    assert [q.get(block=False) for _ in range(4)] == [3, 4, 5, 6]
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(ValueError):
        q.get(timeout=-1)


def test_a_blocked_consumer_is_woken_by_put_and_by_append_then_wake() -> None:
    q: HandOffQueue[str] = HandOffQueue()
    got: queue.SimpleQueue[str] = queue.SimpleQueue()

    def consume() -> None:
        for _ in range(2):
            got.put(q.get(timeout=30))

    consumer = threading.Thread(target=consume)
    consumer.start()
    q.put("put")
    assert got.get(timeout=30) == "put"
    q.append("appended")
    q.wake()
    assert got.get(timeout=30) == "appended"
    consumer.join(30)
    assert not consumer.is_alive()


def _consume(q: HandOffQueue[object], out: list[object], timeout: float | None) -> None:
    while True:
        try:
            item = q.get(timeout=timeout)
        except queue.Empty:
            continue  # a timed wait that ran out: wait again
        if item is _DONE:
            return
        out.append(item)


@pytest.mark.parametrize("batched", [False, True])
def test_many_producers_and_consumers_lose_and_repeat_nothing(batched: bool) -> None:
    q: HandOffQueue[object] = HandOffQueue()
    producers, consumers, per_producer = 3, 4, 20_000
    outs: list[list[object]] = [[] for _ in range(consumers)]
    # Some consumers wait with short timeouts, so that timed-out sleepers mix with blocked ones.
    workers = [threading.Thread(target=_consume, args=(q, outs[i], 0.001 if i % 2 else None)) for i in range(consumers)]

    def produce(p: int) -> None:
        rng = random.Random(p)
        n = 0
        while n < per_producer:
            batch = min(per_producer - n, rng.randint(1, 50))
            for k in range(n, n + batch):
                if batched:
                    q.append((p, k))
                else:
                    q.put((p, k))
            if batched:
                q.wake()
            n += batch

    feeders = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for thread in workers + feeders:
        thread.start()
    for thread in feeders:
        thread.join(120)
    for _ in workers:
        q.put(_DONE)
    for thread in workers:
        thread.join(120)
    assert not any(thread.is_alive() for thread in workers + feeders)
    received = [item for out in outs for item in out]
    assert len(received) == producers * per_producer
    assert set(received) == {(p, k) for p in range(producers) for k in range(per_producer)}
    for out in outs:  # each producer's items reach any one consumer in the order they were put
        for p in range(producers):
            mine = [k for (source, k) in out if source == p]  # type: ignore[misc]
            assert mine == sorted(mine)


def test_a_single_consumer_keeps_up_with_wakes_after_every_item() -> None:
    # The client's case: one reader appends a read's events and wakes once; one consumer.
    q: HandOffQueue[object] = HandOffQueue()
    out: list[object] = []
    consumer = threading.Thread(target=_consume, args=(q, out, None))
    consumer.start()
    for i in range(50_000):
        q.append(i)
        q.wake()
    q.put(_DONE)
    consumer.join(120)
    assert not consumer.is_alive()
    assert out == list(range(50_000))
