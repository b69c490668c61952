"""Run the daemon: start in order, watch, and shut down in order.

Start: sinks (a bad path fails before connecting), metrics, dispatcher, client. The main
thread then only waits: it handles signals, tells systemd how things are (READY=1 once a
connection is healthy, STATUS=, WATCHDOG=1 while the machinery is sound) and notices fatal
errors. Stop (SIGTERM/SIGINT, or a fatal error): close the client, let the dispatcher hand
the rest of the queue to the sinks, let the sinks drain and flush, all within
``drain_timeout``. A second signal exits at once. A sink still stuck in a write then has what
it holds counted as dropped, so that every event dispatched is accounted for.

Restart: with ``resume`` (the default), each sink's written positions are kept (SQLite's rows,
``positions.json`` in the state directory) and the stream resumes from them (see
:mod:`pumpsync.daemon.state`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from pumpsync._early import take_early_hup, take_early_stop
from pumpsync._secrets import ApiKey, RedactingFilter, redact, safe_url
from pumpsync._sources import Source
from pumpsync._version import __version__
from pumpsync.client import Client
from pumpsync.daemon.config import DEMO_KEY, DaemonConfig, client_keywords
from pumpsync.daemon.dispatch import Dispatcher
from pumpsync.daemon.health import machinery_problem, summary
from pumpsync.daemon.sdnotify import Notifier
from pumpsync.daemon.sinks import Sink, build_sinks
from pumpsync.daemon.state import (
    PositionFile,
    StateLock,
    default_state_dir,
    restore,
    sink_positions,
    sink_targets,
    source_identity,
)
from pumpsync.daemon.watch import ThreadWatch
from pumpsync.errors import AllSourcesFailed, ConfigurationError, EndOfStream, ProviderRefused, PumpsyncError
from pumpsync.metrics import MetricsServer, client_ready, start_metrics_server
from pumpsync.providers import provider_spec

if TYPE_CHECKING:
    from pumpsync.simulator import Simulator

log = logging.getLogger("pumpsync.daemon")

EXIT_OK = 0
EXIT_FATAL = 1  # gave up reconnecting, or could not start
EXIT_REFUSED = 3  # the provider refused the key or the plan: restarting will not help

_TICK = 0.2  # seconds between looks at signals and health
_STATUS_EVERY = 5.0
_SAVE_EVERY = 1.0  # seconds between saves of the sinks' positions
_SAVE_WARN_EVERY = 60.0  # seconds between repeated warnings that the positions cannot be saved
_DEMO_RATE = 20.0


class Daemon:
    def __init__(self, config: DaemonConfig, key: ApiKey | None, notifier: Notifier | None = None) -> None:
        self.config = config
        self._key = key
        self.notifier = notifier or Notifier()
        self.client: Client | None = None
        self.sinks: list[Sink] = []
        self.metrics: MetricsServer | None = None
        self.dispatcher: Dispatcher | None = None
        self.simulator: Simulator | None = None
        self._wake = threading.Event()  # set by other threads (fatal error); never from a signal handler
        self._fatal: PumpsyncError | None = None
        self._signal: int | None = None  # the signal that asked us to stop
        self._hup = False
        self._sinks_opening = False  # from here on a SIGHUP reopens; before, there is nothing to reopen
        self._hup_unopened = False  # a SIGHUP came before: logged once the logging is ours
        self._shutting_down = False
        self._ready = False
        self._ready_sent = False
        self._positions: PositionFile | None = None
        self._lock: StateLock | None = None  # the state directory, held for the whole run
        self._save_failing_since: float | None = None  # monotonic; the last warning about it
        self._stuck: set[str] = set()  # sinks reported stuck in a write
        self.threads = ThreadWatch(self._on_thread_failure)  # the daemon's own threads (see pumpsync.daemon.watch)

    # ------------------------------------------------------------------ public
    def run(self) -> int:
        """Run until a signal or a fatal error; the exit status."""
        self._install_signals()
        if self._signal is not None:
            log.info("%s during start-up: exiting", signal.Signals(self._signal).name)
            return EXIT_OK
        try:
            self._start()
        except Exception as exc:  # any start-up failure is reported in one line, then we clean up
            log.error("cannot start: %s", redact(str(exc) or type(exc).__name__, self._key))
            self._shutdown("start-up failed")
            return EXIT_FATAL
        self._loop()
        fatal = self._fatal
        self._shutdown(
            f"signal {signal.Signals(self._signal).name}" if self._signal
            else f"the source has ended: {fatal}" if isinstance(fatal, EndOfStream) else f"fatal error: {fatal}"
        )  # fmt: skip
        if fatal is None or isinstance(fatal, EndOfStream):  # a replay that reached its end is done, not failed
            return EXIT_OK
        if isinstance(fatal, AllSourcesFailed):
            refused = all(isinstance(e, ProviderRefused) for e in fatal.errors.values())
            return EXIT_REFUSED if refused else EXIT_FATAL
        return EXIT_REFUSED if isinstance(fatal, ProviderRefused) else EXIT_FATAL

    # ------------------------------------------------------------------ start
    def _start(self) -> None:
        config = self.config
        options: dict[str, Any] = dict(config.client)
        if config.demo and config.sources:
            options["sources"] = self._simulated_sources(config.sources)
        elif config.demo:
            options.update(self._start_simulator(options["provider"]))
        state_dir = config.state_dir or default_state_dir()
        if state_dir is not None:  # before anything is written: one state directory per daemon
            self._lock = StateLock(state_dir)
            self._lock.acquire()
        self.sinks = build_sinks(config.sinks)
        self._sinks_opening = True  # a SIGHUP from now on asks for a reopen (harmless for a sink opened after it)
        if self._hup_unopened:
            log.info("SIGHUP during start-up, before the sinks were open: nothing to reopen")
        for sink in self.sinks:
            try:
                sink.start(self.threads.reporter("sink", f"sink {sink.name}"))
            except Exception as exc:
                raise RuntimeError(f"sink {sink.name} ({sink.describe()}): {exc}") from None
        if self._key is not None or not config.sources:
            options["api_key"] = self._key  # an ApiKey: the client keeps it wrapped
        if not config.sources:  # the sinks' stored positions are one provider's slots
            self._resume(options, state_dir)
        try:
            self.client = client = Client(**client_keywords(options))
        except ConfigurationError as exc:
            if exc.option != "since" or "since" in config.client or config.sources:
                raise
            log.info("%s has no history to resume from: starting from now", options["provider"])
            del options["since"]
            self.client = client = Client(**client_keywords(options))
        if len(client.members) > 1:  # several sources, several keys: keep every one out of the logs
            for handler in logging.getLogger().handlers:
                for key in client.source_keys():
                    handler.addFilter(RedactingFilter(key))
        if config.metrics_addr.lower() not in ("off", "none", ""):
            try:
                self.metrics = start_metrics_server(client, config.metrics_addr, self.sinks, self.threads)
            except OSError as exc:
                raise OSError(f"cannot serve metrics on {config.metrics_addr}: {exc.strerror or exc}") from None
        self.dispatcher = Dispatcher(
            client.queue, self.sinks, self._on_fatal, self.threads.reporter("dispatcher", "dispatcher")
        )
        self.dispatcher.start()
        client.start()
        members = client.members.values()
        log.info(
            "pumpsync %s: %s at %s, %d connection(s); sinks: %s; metrics: %s",
            __version__, "+".join(client.members), " ".join(safe_url(u) for m in members for u in m.config.urls),
            sum(m.config.connections for m in members),
            ", ".join(f"{s.name} ({s.describe()})" for s in self.sinks),
            f"{self.metrics.url}/metrics" if self.metrics else "off",
        )  # fmt: skip
        self.notifier.status(f"connecting to {'+'.join(client.members)}")

    def _simulated_sources(self, sources: list[Source]) -> list[Source]:
        """--demo with several sources: one simulated market serves every provider."""
        from pumpsync.simulator import Simulator

        logging.getLogger("pumpsync.simulator").setLevel(max(logging.WARNING, logging.getLogger().level))
        providers = tuple(dict.fromkeys(s.provider for s in sources))
        self.simulator = sim = Simulator(providers=providers, port=0, rate=_DEMO_RATE, seed=int(time.time()))
        sim.start()
        log.info("demo: one simulated market for %s", ", ".join(providers))
        return [
            Source(s.provider, name=s.name, **{**s.options, **sim.client_options(s.provider), "api_key": DEMO_KEY})
            for s in sources
        ]

    def _resume(self, options: dict[str, Any], state_dir: str | None) -> None:
        """Give the sinks their stored positions and, unless told otherwise, start the stream there."""
        config = self.config
        provider = str(options["provider"])
        if state_dir is not None:
            url = options.get("url") or options.get("urls") or provider_spec(provider).default_url
            urls = [url] if isinstance(url, str) else [str(u) for u in url]
            self._positions = PositionFile(state_dir, provider, source_identity(provider, urls))
        if not config.resume or config.demo or "since" in options or options.get("backfill") is False:
            return  # (a demo's simulator is a new stream each time: nothing to resume)
        stored = self._positions.load(sink_targets(self.sinks)) if self._positions is not None else {}
        since = restore(self.sinks, stored, provider)
        if since is not None:
            options["since"] = since
            log.info("resuming from slot %d, where the sinks' stored events end", since)

    def _save_positions(self) -> None:
        if self._positions is None:
            return
        try:
            self._positions.save(sink_positions(self.sinks), sink_targets(self.sinks))
        except OSError as exc:  # once a minute, not every second: the state is what it was
            now = time.monotonic()
            if self._save_failing_since is None or now - self._save_failing_since >= _SAVE_WARN_EVERY:
                self._save_failing_since = now
                log.warning("cannot save the sinks' positions to %s: %s (a restart would resume from older ones)",
                            self._positions.path, exc.strerror or exc)  # fmt: skip
        else:
            if self._save_failing_since is not None:
                self._save_failing_since = None
                log.info("the sinks' positions are saved again to %s", self._positions.path)

    def _start_simulator(self, provider: str) -> dict[str, Any]:
        from pumpsync.simulator import Simulator

        # Its per-connection INFO lines would drown the daemon's own.
        logging.getLogger("pumpsync.simulator").setLevel(max(logging.WARNING, logging.getLogger().level))
        self.simulator = sim = Simulator(providers=(provider,), port=0, rate=_DEMO_RATE, seed=int(time.time()))
        sim.start()
        log.info("demo: simulated %s stream at %s", provider, sim.url(provider))
        return sim.client_options(provider)

    # ------------------------------------------------------------------ signals
    def _install_signals(self) -> None:
        signal.signal(signal.SIGHUP, self._on_hup)  # first: its default action ends the process
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop_signal)
        if take_early_hup():  # came during start-up (see pumpsync._early): no sink is open yet
            self._hup_unopened = True
        self._signal = take_early_stop()  # (its SystemExit was swallowed on the way: stop all the same)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only plain assignments here: the main thread may hold any lock when a signal lands.
        if self._signal is not None or self._shutting_down:
            os.write(2, b"pumpsync: second signal, exiting at once\n")
            os._exit(128 + signum)
        self._signal = signum

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        if self._sinks_opening:
            self._hup = True
        else:
            self._hup_unopened = True

    def _on_fatal(self, error: PumpsyncError) -> None:
        if self._fatal is None:
            self._fatal = error
        self._wake.set()

    def _on_thread_failure(self, what: str) -> None:
        self._on_fatal(PumpsyncError(what))  # logged and counted by the watch

    # ------------------------------------------------------------------ the main loop
    def _loop(self) -> None:
        next_status = 0.0
        next_watchdog = 0.0
        next_save = 0.0
        interval = self.notifier.watchdog_interval
        withheld: str | None = None
        while self._signal is None and self._fatal is None:
            self._notice_dead_threads()  # a bug of ours: exit non-zero so that Restart=on-failure steps in
            if self._fatal is not None:
                break
            if self._hup:
                self._hup = False
                log.info("SIGHUP: reopening sink files")
                for sink in self.sinks:
                    sink.request_reopen()
            now = time.monotonic()
            if not self._ready and self.client is not None and client_ready(self.client):
                self._ready = True
                log.info("ready: a connection is healthy")
            if self._ready and not self._ready_sent:  # retried: a full notify socket drops messages
                self._ready_sent = self.notifier.ready(self._summary()) or not self.notifier.enabled
                next_status = now + _STATUS_EVERY
            if now >= next_save:
                self._save_positions()
                next_save = now + _SAVE_EVERY
            self._report_stuck()
            if now >= next_status:
                self.notifier.status(self._summary())
                next_status = now + _STATUS_EVERY
            if interval is not None and now >= next_watchdog:
                problem = self._problem()
                if problem is None:
                    self.notifier.watchdog()
                    next_watchdog = now + interval
                elif problem != withheld:
                    log.error("withholding the systemd watchdog ping: %s", problem)
                withheld = problem
            self._wake.wait(_TICK)

    def _report_stuck(self) -> None:
        for sink in self.sinks:
            if sink.stuck and sink.name not in self._stuck:
                self._stuck.add(sink.name)
                log.warning("sink %s (%s): a write has taken over %g s; reported unhealthy",
                            sink.name, sink.describe(), sink.write_timeout)  # fmt: skip
            elif not sink.stuck and sink.name in self._stuck:
                self._stuck.discard(sink.name)

    def _notice_dead_threads(self) -> None:
        """A thread that ended without reporting it (the watch counts each thread once)."""
        if self.dispatcher is not None and self.dispatcher.ended_unexpectedly:
            self.threads.failed("dispatcher", "dispatcher", None)
        for sink in self.sinks:
            if not sink.alive:
                self.threads.failed("sink", f"sink {sink.name}", None)
        if self.metrics is not None and not self.metrics.alive:
            self.threads.failed("metrics", "metrics server", None)

    def _summary(self) -> str:
        assert self.client is not None
        return summary(self.client, self.sinks, self.dispatcher)

    def _problem(self) -> str | None:
        assert self.client is not None and self.dispatcher is not None
        return machinery_problem(self.client, self.dispatcher, self.sinks, self.metrics)

    # ------------------------------------------------------------------ stop
    def _shutdown(self, reason: str) -> None:
        self._shutting_down = True
        deadline = time.monotonic() + self.config.drain_timeout

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        self.notifier.stopping(f"stopping ({reason})")
        log.info("stopping (%s): draining for up to %.0f s", reason, self.config.drain_timeout)
        if self.client is not None:
            self.client.close(timeout=min(5.0, remaining()))
        if self.dispatcher is not None and not self.dispatcher.join(remaining()):
            self.dispatcher.stop()
            self.dispatcher.join(1.0)
        for sink in self.sinks:
            sink.close(deadline)
        for sink in self.sinks:
            if not sink.join(remaining() + 2.0):  # a little beyond: flushing and closing the file
                left = sink.abandon()
                log.warning("sink %s did not finish in time (a write is stuck): %d events dropped", sink.name, left)
        self._save_positions()
        if self._lock is not None:
            self._lock.release()
        if self.metrics is not None:
            self.metrics.close()
        if self.simulator is not None:
            self.simulator.stop()
        self.notifier.close()
        written = ", ".join(
            f"{s.name} {s.written} written/{s.dropped} dropped" + (f"/{s.skipped} stored before" if s.skipped else "")
            for s in self.sinks
        )
        log.info("stopped: %d events dispatched; %s", self.dispatcher.dispatched if self.dispatcher else 0, written)
