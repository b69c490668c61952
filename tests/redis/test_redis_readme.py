"""The README's team layout (Operations, "Fan-out through Redis") runs end to end on one machine:
its ```sh block, run by bash exactly as printed except for the ports (free ones instead of 6379,
8766, 9108, 9109): a real redis-server, the simulator, an HA pair of daemons, two consumers.
Each consumer gets events, none twice; both daemons append, and the pair's published counts add
up to the stream's length."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from redishelpers import REDIS_SERVER, _free_port

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = next(
    (b for b in re.findall(r"^```sh\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL) if "redis-server" in b), ""
)
PORTS = ("6379", "8766", "9108", "9109")  # redis, the simulator, the two daemons' metrics

pytestmark = pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason=f"{REDIS_SERVER} not found")


def _metric(body: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in body.splitlines() if line.startswith(name + "{"))


def _scrape(port: str) -> str:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""


def _events(path: Path) -> list[tuple[object, ...]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines[:-1]]  # the last line may still be partial
    return [(e["kind"], e["signature"], e["mint"], e.get("side"), e.get("trader")) for e in events]


def test_the_readme_team_layout_runs_end_to_end(tmp_path: Path) -> None:
    assert BLOCK, "the README's team layout block (```sh with redis-server) is missing"
    for port in PORTS:
        assert BLOCK.count(port) >= 1, port
    ports = {port: str(_free_port()) for port in PORTS}
    script = BLOCK
    for port, free in ports.items():
        script = script.replace(port, free)
    # `pumpsync` as printed, run from this checkout with this interpreter.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "pumpsync"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pumpsync "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPSYNC_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    log = open(tmp_path / "layout.log", "wb")  # noqa: SIM115 - the processes keep it
    # Its own session: every process the script starts in the background is in its group.
    shell = subprocess.Popen(["bash", "-e", "-c", script], cwd=tmp_path, env=env, stdout=log, stderr=log,
                             stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    log.close()
    try:
        assert shell.wait(30) == 0, (tmp_path / "layout.log").read_text()
        bots = [tmp_path / "bot1.jsonl", tmp_path / "bot2.jsonl"]

        import redis

        db = redis.Redis(host="127.0.0.1", port=int(ports["6379"]), decode_responses=True)

        def counts(name: str) -> list[float]:
            return [_metric(_scrape(ports[p]), f"pumpsync_redis_sink_{name}_total") for p in ("9108", "9109")]

        def flowing() -> bool:
            # Both daemons handle the events (each appended or left to the other), and some were
            # seen by both: the second copy was left out.
            published, deduplicated = counts("published"), counts("deduplicated")
            handled = [p + d for p, d in zip(published, deduplicated, strict=True)]
            return all(len(_events(bot)) >= 30 for bot in bots) and min(handled) > 0 and sum(deduplicated) > 0

        try:
            wait_until(flowing, 60, "both consumers to get events and both daemons to handle them")
            # The pair's published counts add up to the stream (compared until one instant finds them equal).
            wait_until(lambda: sum(counts("published")) == db.xlen("pumpsync:events"), 30, "published == XLEN")
            entries = db.xrange("pumpsync:events")
        finally:
            db.close()
        for bot in bots:
            repeated = [key for key, n in Counter(_events(bot)).items() if n > 1]
            assert not repeated, f"{bot.name}: {repeated[:3]}"
        keys = Counter(
            (e["kind"], e["signature"], e["mint"], e.get("side"), e.get("trader"))
            for e in (json.loads(fields["event"]) for _, fields in entries)
        )
        assert keys and max(keys.values()) == 1  # each event once in the stream
    finally:
        _end_group(shell.pid)


def _end_group(pgid: int) -> None:
    """SIGTERM to every process the script started (the daemons drain and exit), SIGKILL to any left."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
