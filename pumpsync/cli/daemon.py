"""``pumpsync daemon``: hold the connections, hand events on to sinks, export metrics."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import click
from click.core import ParameterSource

from pumpsync._importcheck import install_hint, missing_extra
from pumpsync._secrets import ApiKey, RedactingFilter
from pumpsync._sources import Source
from pumpsync.cli._options import client_kwargs, client_options, configuration_error
from pumpsync.client import Client
from pumpsync.config import make_config
from pumpsync.daemon.config import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_METRICS_ADDR,
    LOG_LEVELS,
    DaemonConfig,
    build_config,
    client_keywords,
    load_file,
    resolve_key,
)
from pumpsync.daemon.sinks import build_sinks, parse_sink
from pumpsync.daemon.state import check_state_dir, default_state_dir
from pumpsync.errors import ConfigurationError

_EXPLICIT = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
_DAEMON_PARAMS = ("metrics_addr", "drain_timeout", "log_level", "demo", "resume", "state_dir")
_EPILOG = """\b
Sinks (--sink, repeatable; default stdout):
  stdout  jsonl:PATH  sqlite:PATH  webhook:URL  callable:MODULE:FUNCTION
  redis://HOST:PORT/DB?stream=NAME&maxlen=N  (a Redis Stream; pumpsync[redis])
Every option can be set in the environment as PUMPSYNC_<OPTION> (PUMPSYNC_METRICS_ADDR,
PUMPSYNC_CONFIG; repeatable ones as PUMPSYNC_SINKS and PUMPSYNC_CHANNELS, space-separated)
and in the --config file with the option's name (metrics_addr = "..."); flags win over the
environment, which wins over the file. The key: --api-key-file, PUMPSYNC_API_KEY, or the
systemd credential api_key ($CREDENTIALS_DIRECTORY/api_key).
\b
Exit status: 0 after SIGTERM/SIGINT, 2 for a configuration error, 3 when the provider
refuses the key or the plan, 1 otherwise."""


@click.command(context_settings={"auto_envvar_prefix": "PUMPSYNC"}, epilog=_EPILOG)
@client_options
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, envvar="PUMPSYNC_CONFIG",
              help="TOML config file.")  # fmt: skip
@click.option("--sink", "sinks", multiple=True, metavar="SPEC", help="Where events go, repeatable [stdout].")
@click.option("--metrics-addr", default=None, metavar="HOST:PORT",
              help=f"Serve /metrics, /healthz, /readyz here; 'off' to disable [{DEFAULT_METRICS_ADDR}].")  # fmt: skip
@click.option("--drain-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help=f"Seconds to drain the queue into the sinks on shutdown [{DEFAULT_DRAIN_TIMEOUT:g}].")  # fmt: skip
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default=None, help="[info]")
@click.option("--demo", is_flag=True, help="Run against the built-in simulator (no key, no network).")
@click.option(
    "--resume/--fresh",
    default=None,
    help="After a restart, start from where the sinks' stored events end (the default), or from now.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where positions.json is kept [$STATE_DIRECTORY, as systemd's StateDirectory= sets].",
)
@click.option("--check", is_flag=True, help="Print the effective configuration (without the key) and exit.")
def daemon(config_path: str | None, check: bool, **params: Any) -> None:
    """Run as a service: stream to sinks, serve Prometheus metrics, speak sd_notify."""
    from pumpsync._early import hold_signals
    from pumpsync.daemon.runner import Daemon

    hold_signals()  # before reading the config: a SIGHUP must not end a daemon that is starting
    ctx = click.get_current_context()
    try:
        file = load_file(config_path) if config_path else {}
        explicit = _explicit(ctx, params)
        config = build_config(file, explicit)
        if check:
            _check(config, *_key_source(ctx, params))
            return
        key = resolve_key(config, *_key_source(ctx, params))
        _setup_logging(config.log_level, key)
        _validate_client(config, key)
        build_sinks(config.sinks)  # a bad sink option is a usage error too, not a failed start
        _check_state_dir(config)
        if config.demo:
            _need_simulator()
    except ConfigurationError as exc:
        raise configuration_error(exc) from None
    sys.exit(Daemon(config, key).run())


def _need_simulator() -> None:
    """--demo runs the simulator, which the tools extra brings: without it, one line saying so."""
    try:
        import pumpsync.simulator  # noqa: F401
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc)
        if missing is None:
            raise
        raise click.ClickException(install_hint("pumpsync daemon --demo", *missing)) from None


def _validate_client(config: DaemonConfig, key: ApiKey | str | None) -> None:
    """Client options fail here, as usage errors, rather than once the daemon is running."""
    options = dict(config.client)
    if config.sources:  # built, not started: each source's options and key are checked
        if config.demo:
            local = {"url": "ws://127.0.0.1/", "api_key": key}
            options["sources"] = [Source(s.provider, name=s.name, **{**s.options, **local}) for s in config.sources]
        elif key is not None:
            options["api_key"] = key
        try:
            Client(**client_keywords(options)).close()
        except (TypeError, AttributeError) as exc:  # a value of a type the file check let through: one line, exit 2
            raise ConfigurationError("sources", f"a value has the wrong type ({exc})") from None
        return
    if config.demo:  # the simulator's URLs replace these; do not warn about the real ones
        options.update(url="ws://127.0.0.1/", rest_url=None)
    try:
        make_config(**{**options, "api_key": key})
    except (TypeError, AttributeError) as exc:  # a value of a type the file check let through: one line, exit 2
        raise ConfigurationError("config", f"a value has the wrong type ({exc})") from None


def _check_state_dir(config: DaemonConfig) -> None:
    """The state directory is writable and no other daemon holds it (the daemon locks it once running)."""
    state_dir = config.state_dir or default_state_dir()
    if state_dir is not None:
        check_state_dir(state_dir)


def _check(config: DaemonConfig, api_key: str | None, api_key_file: str | None) -> None:
    """Validate everything but the network, and print the effective settings (never the key)."""
    build_sinks(config.sinks)
    missing: ConfigurationError | None = None
    try:
        key: ApiKey | str | None = resolve_key(config, api_key, api_key_file)
        found = "found" if key is not None or not config.sources else "each source's own"
    except ConfigurationError as exc:
        key, found, missing = "placeholder", f"not found ({str(exc).split(': ', 1)[-1]})", exc
    if key is None and not config.sources:
        found = "not needed"  # a free source
    _validate_client(config, key)
    _check_state_dir(config)
    shown = config.describe()
    click.echo(json.dumps({**shown, "api_key": found}, indent=2, default=str))
    if missing is not None:
        raise missing  # the service would not start: --check must fail too


def _explicit(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    """Settings given as flags or in the environment, as config keys."""
    given = {name: value for name, value in params.items() if ctx.get_parameter_source(name) in _EXPLICIT}
    explicit = {name: given[name] for name in _DAEMON_PARAMS if given.get(name) is not None}
    client = client_kwargs({**given, "provider": given.get("provider")})
    client.pop("api_key", None)
    client.pop("api_key_file", None)
    if client.get("provider") is None:
        client.pop("provider", None)
    explicit.update(client)
    verbose = given.get("verbose") or 0
    if verbose and "log_level" not in explicit:
        explicit["log_level"] = "info" if verbose == 1 else "debug"
    if given.get("sinks"):
        explicit["sinks"] = [parse_sink(spec) for spec in given["sinks"]]
    return explicit


def _key_source(ctx: click.Context, params: dict[str, Any]) -> tuple[str | None, str | None]:
    """(api_key, api_key_file), only the winner set: a flag over the environment, then the key over the file."""
    ranked = []
    for rank, name in enumerate(("api_key", "api_key_file")):
        source = ctx.get_parameter_source(name)
        if params.get(name) is not None and source in _EXPLICIT:
            ranked.append((_EXPLICIT.index(source), rank, name))
    if not ranked:
        return None, None
    name = min(ranked)[2]
    return (params[name], None) if name == "api_key" else (None, params[name])


def _setup_logging(level: str, key: ApiKey | None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    # journald stamps each line itself; elsewhere we add the time.
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(RedactingFilter(key))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("urllib3").setLevel(max(root.level, logging.INFO))  # its DEBUG lines quote URLs
