"""A real Prometheus (Debian's binary) scrapes a daemon that streams from the simulator; every
dashboard query and every alert-rule query must return data: first while the daemon has only
just connected (no event, no disconnect: the data are zeros), then after events, a disconnect
and a backfill. Where redis-server is installed the daemon also has a redis sink, and a second
daemon (a group member on the redis source) is scraped too, for the fan-out row."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemonhelpers import DASHBOARD, FAST_FLAGS, RULES, DaemonProc, clean_env, free_port, http_get, wait_until

from pumpsync.simulator import Simulator
from tests.redis.redishelpers import REDIS_SERVER, RedisServer

PROMETHEUS = shutil.which("prometheus")
# The fan-out row's panels need a redis sink and a consumer: checked only where redis-server is installed.
WITH_REDIS = Path(REDIS_SERVER).exists()
SCRAPE = "1s"
# Grafana's variables, as a dashboard would resolve them for this setup.
VARIABLES = {"$__rate_interval": "10s", "$__range": "1m", "$job": "pumpsync", "$instance": ".+"}
COMPARISON = re.compile(r"^(?P<query>.+?)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<threshold>-?[0-9.]+)\s*$", re.S)

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="the prometheus binary is not installed (apt-get install prometheus; .ci/run does)"
)


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class Prometheus:
    def __init__(self, workdir: Path, target: str, *more_targets: str) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "pumpsync", "static_configs": [{"targets": [target, *more_targets]}]}],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        assert PROMETHEUS is not None
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config_path}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_until(self._ready, 30, "Prometheus to be ready")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"prometheus exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return http_get(f"http://127.0.0.1:{self.port}/-/ready", timeout=2)[0] == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        status, body = http_get(url)
        data = json.loads(body)
        assert status == 200 and data["status"] == "success", body
        return data["data"]

    def query(self, expr: str) -> list[Any]:
        result: list[Any] = self.api("query", query=expr)["result"]
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, DaemonProc, Simulator]]:
    """Prometheus scraping a daemon that has just connected; the simulator is paused (no event yet)."""
    workdir = tmp_path_factory.mktemp("prometheus")
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    hook.daemon_threads = True
    hook_thread = threading.Thread(target=hook.serve_forever, daemon=True)
    hook_thread.start()
    sim = Simulator(providers=("anaxer",), rate=20.0, seed=5, paused=True).start()
    daemon = prometheus = consumer = redis = None
    try:
        fanout: list[str] = []
        if WITH_REDIS:
            redis = RedisServer(workdir)
            redis.start()
            fanout = ["--sink", f"{redis.url}?stream=prometheus:events"]
        daemon = DaemonProc(
            ["--provider", "anaxer", "--url", sim.url("anaxer"), "--rest-url", sim.rest_url("anaxer"),
             "--connections", "2", "--channel", "creations", "--channel", "trades", *FAST_FLAGS,
             "--sink", f"sqlite:{workdir / 'events.sqlite3'}", "--sink", f"jsonl:{workdir / 'events.jsonl'}",
             "--sink", f"webhook:http://127.0.0.1:{hook.server_address[1]}/hook", *fanout],
            workdir, clean_env(PUMPSYNC_API_KEY="prometheus-test-key"),
        )  # fmt: skip
        daemon.wait_ready()
        targets = [f"127.0.0.1:{daemon.metrics_port}"]
        if redis is not None:
            consumer = DaemonProc(
                ["--provider", "redis", "--url", f"{redis.url}?stream=prometheus:events&since=0", "--group", "bots",
                 "--consumer", "bot-1", "--sink", f"jsonl:{workdir / 'consumed.jsonl'}"],
                workdir, clean_env(), "consumer",
            )  # fmt: skip
            consumer.wait_ready()
            targets.append(f"127.0.0.1:{consumer.metrics_port}")
        prometheus = Prometheus(workdir, *targets)
        wait_until(lambda: prometheus.query('up{job="pumpsync"} == 1'), 30, "a first successful scrape")
        yield prometheus, daemon, sim
        for proc in (daemon, consumer):
            if proc is not None:
                assert proc.stop() == 0
                assert "Traceback" not in proc.stderr
    finally:
        if prometheus is not None:
            prometheus.stop()
        for proc in (daemon, consumer):
            if proc is not None:
                proc.kill()
        if redis is not None:
            redis.stop()
        sim.stop()
        hook.shutdown()
        hook.server_close()
        hook_thread.join(5)


@pytest.fixture(scope="module")
def stack(fresh: tuple[Prometheus, DaemonProc, Simulator]) -> tuple[Prometheus, DaemonProc]:
    """The same daemon after events, a disconnect of every connection and the backfill of its gap."""
    prometheus, daemon, sim = fresh
    sim.resume()
    wait_until(lambda: (daemon.sample("pumpsync_delivered_events_total") or 0) > 0, 30, "events")
    sim.drop("anaxer")  # every connection at once: reconnects by reason, and a gap to backfill
    wait_until(lambda: (daemon.sample("pumpsync_backfill_requests_total") or 0) > 0, 30, "a backfill")
    return prometheus, daemon


# The Sources row measures the race between several sources: a one-source daemon has none
# (tests/daemon/test_daemon_sources.py runs those queries against a daemon with several).
SOURCE_FAMILIES = ("pumpsync_source_", "pumpsync_race_")


def dashboard_queries(sources: bool = False) -> list[tuple[str, str]]:
    out = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        if not WITH_REDIS and panel["title"].startswith("Redis "):
            continue
        for target in panel.get("targets", []):
            expr = target["expr"]
            if any(family in expr for family in SOURCE_FAMILIES) != sources:
                continue
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            out.append((f"{panel['title']} / {target['refId']}", expr))
    return out


def rule_queries() -> list[tuple[str, str]]:
    """Each alert's expression with its comparison made a `bool` one, so it returns data whether or not it fires."""
    out = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            match = COMPARISON.match(rule["expr"].strip())
            assert match, f"{rule['alert']}: expected '<query> <op> <threshold>'"
            out.append((rule["alert"], f"{match['query']} {match['op']} bool {match['threshold']}"))
    return out


def assert_all_return_data(prometheus: Prometheus, queries: list[tuple[str, str]]) -> None:
    missing: dict[str, str] = dict(queries)

    def done() -> bool:
        for name, expr in list(missing.items()):
            if prometheus.query(expr):
                del missing[name]
        return not missing

    try:
        wait_until(done, 60, "every query to return data", interval=1.0)
    except pytest.fail.Exception:
        pytest.fail("no data for:\n" + "\n".join(f"  {name}: {expr}" for name, expr in missing.items()))


def test_right_after_connect_every_query_returns_data_zeros_not_no_data(
    fresh: tuple[Prometheus, DaemonProc, Simulator],
) -> None:
    """Issue 11: a daemon that has only just connected showed "No data" on its reconnect panels,
    and rate()-based alerts saw nothing, because labelled counters appeared at their first increment."""
    prometheus, _, _ = fresh
    queries = dashboard_queries() + rule_queries()
    assert_all_return_data(prometheus, queries)
    for name, expr in queries:  # quantiles of nothing are NaN; everything else is a number (0 where nothing happened)
        if "histogram_quantile" not in expr:
            values = [sample["value"][1] for sample in prometheus.query(expr)]
            assert values and "NaN" not in values, f"{name}: {expr} -> {values}"
    # Still fresh, so the data above are the zeros exported from the start, not early events.
    assert [r["value"][1] for r in prometheus.query('sum(pumpsync_events_total{job="pumpsync"})')] == ["0"]
    assert [r["value"][1] for r in prometheus.query('sum(pumpsync_disconnects_total{job="pumpsync"})')] == ["0"]
    assert prometheus.query('count(pumpsync_disconnects_total{job="pumpsync", reason="closed"})')  # close codes


def test_every_dashboard_query_returns_data(stack: tuple[Prometheus, DaemonProc]) -> None:
    prometheus, _ = stack
    queries = dashboard_queries()
    assert len(queries) >= 20
    assert_all_return_data(prometheus, queries)


def test_every_alert_rule_query_returns_data_and_the_rules_evaluate(stack: tuple[Prometheus, DaemonProc]) -> None:
    prometheus, _ = stack
    assert_all_return_data(prometheus, rule_queries())

    def evaluated() -> list[Any]:
        rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        return rules if rules and all(r["health"] == "ok" for r in rules) else []

    rules = wait_until(evaluated, 30, "every rule to be evaluated without error")
    assert {r["name"] for r in rules} >= {name for name, _ in rule_queries()}


def test_the_dashboard_variables_find_the_daemon(stack: tuple[Prometheus, DaemonProc]) -> None:
    prometheus, daemon = stack
    jobs = prometheus.api("label/job/values", **{"match[]": "pumpsync_build_info"})
    instances = prometheus.api("label/instance/values", **{"match[]": 'pumpsync_build_info{job=~"pumpsync"}'})
    assert jobs == ["pumpsync"] and f"127.0.0.1:{daemon.metrics_port}" in instances
    assert len(instances) == (2 if WITH_REDIS else 1)  # with redis-server: the consumer too


def test_the_disconnect_shows_in_prometheus_with_its_reason(stack: tuple[Prometheus, DaemonProc]) -> None:
    prometheus, _ = stack
    result = wait_until(lambda: prometheus.query("sum by (reason) (pumpsync_disconnects_total) > 0"), 30, "reasons")
    assert {r["metric"]["reason"] for r in result} <= {"dropped", "closed"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_daemons_scrape(stack: tuple[Prometheus, DaemonProc]) -> None:
    _, daemon = stack
    body = daemon.metrics()
    assert "pumpsync_sink_events_written_total" in body and "pumpsync_process_resident_memory_bytes" in body
    result = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
