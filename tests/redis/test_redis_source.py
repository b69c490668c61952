"""The redis source against a real redis-server: positions, groups, crashes, outages."""

from __future__ import annotations

import json
import queue
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from redishelpers import RedisServer, settle

import pumpsync
from pumpsync.daemon.sinks.base import event_json
from pumpsync.daemon.sinks.redis import entry_fields
from pumpsync.errors import ConfigurationError, ConnectionLost
from pumpsync.events import Event
from pumpsync.providers.redis import RedisReader
from tests.conftest import wait_until

FAST = {"backoff_initial": 0.05, "backoff_max": 0.3}

KINDS = ["client", "reader"]  # pumpsync.connect("redis", ...), and the reader with a thread of its own

# A consumer as a separate process (so that it can be killed): one line per event handled.
CONSUMER = """
import sys, time
url, out, delay, kind, *options = sys.argv[1:]
kwargs = dict(option.split("=", 1) for option in options)
if kind == "client":
    import pumpsync
    stream = pumpsync.connect("redis", url=url, backoff_initial=0.05, backoff_max=0.3, **kwargs)
else:
    from pumpsync.providers.redis import RedisReader
    stream = RedisReader(url, backoff_initial=0.05, backoff_max=0.3, **kwargs).start()
with stream, open(out, "a") as file:
    for event in stream:
        time.sleep(float(delay))  # the work, during which a kill may land
        file.write(event.signature + "\\n")
        file.flush()
"""


def event(i: int) -> Event:
    return Event(
        kind="trade", provider="anaxer", mint=f"Mint{i % 5}", signature=f"Sig{i}", slot=500 + i,
        timestamp=1_700_000_000_000, received_at=1_700_000_000_100 + i, connection=0, backfill=False, raw={"i": i},
        channel="trades", side="sell",
        sol_amount=1.5, token_amount=3.0, trader="T", price_sol=0.5,
    )  # fmt: skip


def publish(client: Any, stream: str, start: int, stop: int) -> None:
    """Entries as the redis sink writes them."""
    pipe = client.pipeline(transaction=False)
    for i in range(start, stop):
        fields = entry_fields(event(i))
        pipe.xadd(stream, dict(zip(fields[::2], fields[1::2], strict=True)))
    pipe.execute()


def open_stream(kind: str, url: str, **options: Any) -> Any:
    """A started redis source: a Client or a RedisReader (the same get/close API)."""
    if kind == "client":
        return pumpsync.connect("redis", url=url, **FAST, **options)
    return RedisReader(url, **FAST, **options).start()


def connects(stream: Any) -> int:
    stats = stream.stats()
    return int(stats["connects"] if "connects" in stats else stats["connections"][0]["connects"])


def take(reader: Any, n: int, timeout: float = 15.0) -> list[Event]:
    return [reader.get(timeout=timeout) for _ in range(n)]


class Consumer:
    def __init__(self, tmp: Path, label: str, url: str, delay: float, kind: str, **options: str) -> None:
        script = tmp / "consumer.py"
        script.write_text(CONSUMER)
        self.out = tmp / f"{label}.txt"
        self.args = [sys.executable, str(script), url, str(self.out), str(delay), kind]
        self.args += [f"{k}={v}" for k, v in options.items()]
        self.starts: list[int] = []  # lines written before each start
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.starts.append(len(self.lines()))
        with open(self.out.with_suffix(".stderr"), "ab") as err:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stderr=err)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)  # KeyboardInterrupt: the reader is closed
        self.proc.wait(10)

    def lines(self) -> list[str]:
        return self.out.read_text().split() if self.out.exists() else []


@pytest.mark.parametrize("kind", KINDS)
def test_plain_reader_yields_the_published_events(redis_server: RedisServer, redis_db: Any, kind: str) -> None:
    publish(redis_db, "s:plain", 0, 30)
    reader = open_stream(kind, f"{redis_server.url}?stream=s:plain&since=0")
    with reader:
        got = take(reader, 30)
        assert got == [event(i) for i in range(30)]
        publish(redis_db, "s:plain", 30, 40)
        assert take(reader, 10) == [event(i) for i in range(30, 40)]
        stats = reader.stats()
    assert stats.get("delivered", stats.get("events")) == 40


@pytest.mark.parametrize("kind", KINDS)
def test_since_dollar_reads_only_new_entries_and_junk_is_skipped(
    redis_server: RedisServer, redis_db: Any, kind: str
) -> None:
    publish(redis_db, "s:new", 0, 5)
    reader = open_stream(kind, f"{redis_server.url}?stream=s:new")
    with reader:
        wait_until(lambda: connects(reader), what="the reader to connect")
        redis_db.xadd("s:new", {"not": "ours"})
        redis_db.xadd("s:new", {"event": "{not json"})
        publish(redis_db, "s:new", 5, 8)
        assert take(reader, 3) == [event(i) for i in range(5, 8)]
        stats = reader.stats()
    if kind == "reader":
        assert stats["malformed"] == 2
    else:
        assert sum(stats["connections"][0]["malformed"].values()) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_named_reader_resumes_after_close_without_gap_or_duplicate(
    redis_server: RedisServer, redis_db: Any, kind: str
) -> None:
    publish(redis_db, "s:named", 0, 50)
    url = f"{redis_server.url}?stream=s:named&since=0"
    with open_stream(kind, url, name="bot") as reader:
        first = take(reader, 20)
    assert redis_db.get("s:named:position:bot") is not None
    with open_stream(kind, url, name="bot") as reader:
        rest = take(reader, 30)
        with pytest.raises(queue.Empty):
            reader.get(timeout=0.3)
    assert [e.signature for e in first + rest] == [f"Sig{i}" for i in range(50)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_consumer_resumes_where_it_stopped(
    redis_server: RedisServer, redis_db: Any, tmp_path: Path, kind: str
) -> None:
    """Killed at random moments: nothing skipped, and only the event in hand at a kill comes again."""
    total = 300
    publish(redis_db, "s:kill", 0, total)
    consumer = Consumer(tmp_path, "bot", f"{redis_server.url}?stream=s:kill&since=0", 0.004, kind, name="bot")
    rng = random.Random()
    for _ in range(3):
        consumer.start()
        settle(rng.uniform(0.3, 0.9))
        consumer.kill()
    consumer.start()
    wait_until(lambda: "Sig299" in consumer.lines(), 30, "the consumer to reach the end")
    # Killed while waiting for the next event: its last one is consumed, so nothing comes twice.
    wait_until(lambda: redis_db.get("s:kill:position:bot") == redis_db.xrevrange("s:kill", count=1)[0][0],
               what="the position to be saved")  # fmt: skip
    consumer.kill()
    publish(redis_db, "s:kill", total, total + 10)
    consumer.start()
    wait_until(lambda: f"Sig{total + 9}" in consumer.lines(), 30, "the events after the restart")
    consumer.stop()
    lines = consumer.lines()

    def repeated(mark: int) -> bool:  # the first line after a start is the last one before it
        return 0 < mark < len(lines) and lines[mark] == lines[mark - 1]

    # By lines written, not per run: under load a run may be killed before it handled anything, and
    # the event in hand at the kill before it comes first in the run after it.
    *during_work, while_waiting = consumer.starts
    repeats = sum(map(repeated, set(during_work)))
    assert len(lines) - repeats == total + 10, (consumer.starts, [s for s, n in Counter(lines).items() if n > 1])
    assert list(dict.fromkeys(lines)) == [f"Sig{i}" for i in range(total + 10)]
    assert repeats <= 3  # at most once per kill during work
    assert not repeated(while_waiting)  # none for the kill while waiting


@pytest.mark.parametrize("kind", KINDS)
def test_a_group_shares_the_work_and_claims_a_dead_members_entries(
    redis_server: RedisServer, redis_db: Any, tmp_path: Path, kind: str
) -> None:
    total = 300
    redis_db.xgroup_create("s:group", "bots", id="0", mkstream=True)
    url = f"{redis_server.url}?stream=s:group&claim_timeout=1&batch=5"
    members = [Consumer(tmp_path, f"bot{i}", url, 0.01, kind, group="bots", consumer=f"bot{i}") for i in range(3)]
    for member in members:
        member.start()
    publish(redis_db, "s:group", 0, total // 2)

    def holding(name: str) -> int:
        return len(redis_db.xpending_range("s:group", "bots", "-", "+", 100, consumername=name))

    wait_until(lambda: holding("bot0") >= 2 and members[0].lines(), what="bot0 to hold entries")
    settle(random.uniform(0.0, 0.3))
    members[0].kill()
    assert holding("bot0") >= 1
    publish(redis_db, "s:group", total // 2, total)
    wait_until(lambda: len(set(members[1].lines() + members[2].lines() + members[0].lines())) == total, 60,
               "every event handled by some member")  # fmt: skip
    for member in members[1:]:
        member.stop()
    counts = Counter(members[0].lines() + members[1].lines() + members[2].lines())
    assert set(counts) == {f"Sig{i}" for i in range(total)}
    repeated = {sig for sig, n in counts.items() if n > 1}
    assert repeated <= set(members[0].lines()[-1:])  # only bot0's event in hand may have been handled twice
    assert holding("bot0") == 0  # its entries were claimed
    assert members[1].lines() and members[2].lines()
    assert redis_db.xpending("s:group", "bots")["pending"] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_group_members_in_process_each_get_distinct_events(redis_server: RedisServer, redis_db: Any, kind: str) -> None:
    url = f"{redis_server.url}?stream=s:share&since=0&batch=3"
    readers = [open_stream(kind, url, group="g", consumer=f"m{i}") for i in range(3)]
    try:
        publish(redis_db, "s:share", 0, 90)
        seen: list[str] = []
        while len(seen) < 90:
            for reader in readers:
                try:
                    seen.append(str(reader.get(timeout=0.05).signature))
                except queue.Empty:
                    pass
        assert sorted(seen) == sorted(f"Sig{i}" for i in range(90))
    finally:
        for reader in readers:
            reader.close()
    assert redis_db.xpending("s:share", "g")["pending"] == 0  # closing acknowledged the events in hand


@pytest.mark.parametrize("kind", KINDS)
def test_redis_restarted_mid_stream(redis_server: RedisServer, redis_db: Any, kind: str) -> None:
    publish(redis_db, "s:restart", 0, 20)
    with open_stream(kind, f"{redis_server.url}?stream=s:restart&since=0") as reader:
        got = take(reader, 20)
        redis_server.restart()
        client = redis_server.client()
        publish(client, "s:restart", 20, 40)
        got += take(reader, 20)
        assert connects(reader) >= 2
        with pytest.raises(queue.Empty):
            reader.get(timeout=0.3)
    assert [e.signature for e in got] == [f"Sig{i}" for i in range(40)]


@pytest.mark.parametrize("kind", KINDS)
def test_redis_gone_for_good_ends_with_connection_lost(redis_server: RedisServer, kind: str) -> None:
    from redishelpers import _free_port

    with open_stream(kind, f"redis://127.0.0.1:{_free_port()}/0", max_retries=2) as reader:
        with pytest.raises(ConnectionLost):
            reader.get(timeout=20)
        assert reader.error is not None
        with pytest.raises(ConnectionLost):  # it stays there for the next reader
            reader.get(timeout=1)


def test_invalid_options_name_the_option() -> None:
    for kwargs, option in (
        ({"since": "yesterday"}, "since"),
        ({"group": "g", "name": "n"}, "name"),
        ({"batch": 0}, "batch"),
        ({"claim_timeout": -1}, "claim_timeout"),
    ):
        with pytest.raises(ConfigurationError, match=option):
            RedisReader("redis://127.0.0.1:1/0", **kwargs)
    with pytest.raises(ConfigurationError, match="url"):
        RedisReader("ws://127.0.0.1/")
    assert "secret" not in repr(RedisReader("redis://:secret@127.0.0.1:1/0"))
    assert json.loads(event_json(event(1)))["channel"] == "trades"


def test_a_group_member_read_through_client_queue_does_not_stall(redis_server: RedisServer, redis_db: Any) -> None:
    """The daemon's dispatcher reads ``client.queue`` itself (no takes reported): acknowledged once queued."""
    publish(redis_db, "s:queue", 0, 40)
    with pumpsync.connect("redis", url=f"{redis_server.url}?stream=s:queue&since=0&batch=5", group="g") as client:
        got = [client.queue.get(timeout=10) for _ in range(40)]
        assert [e.signature for e in got] == [f"Sig{i}" for i in range(40)]
        wait_until(lambda: redis_db.xpending("s:queue", "g")["pending"] == 0, what="every entry acknowledged")
