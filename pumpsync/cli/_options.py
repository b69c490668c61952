"""Options shared by ``pumpsync stream``, ``pumpsync daemon`` and friends: one definition each."""

from __future__ import annotations

import inspect
import json
import logging
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from pumpsync._keys import choose_api_key
from pumpsync._secrets import ApiKey, RedactingFilter
from pumpsync._sources import Source
from pumpsync.client import Client
from pumpsync.errors import ConfigurationError
from pumpsync.providers import DEFAULT_PROVIDER, provider_spec, with_history
from pumpsync.providers import PROVIDERS as SPECS

F = TypeVar("F", bound=Callable[..., Any])

PROVIDERS = tuple(SPECS)

# (flag, python name, type, help) for the timing and sizing options of a client.
TUNING = [
    ("--ping-interval", float, "Seconds between heartbeat pings [30]."),
    ("--pong-timeout", float, "Seconds to wait for a pong before the socket counts as dead [10]."),
    ("--stale-timeout", float, "Seconds of silence after which a socket counts as dead [60]."),
    ("--backoff-initial", float, "First reconnect delay ceiling, seconds [0.5]."),
    ("--backoff-max", float, "Largest reconnect delay, seconds [30]."),
    ("--queue-size", int, "Events the queue holds before the oldest are dropped [100000]."),
    ("--max-retries", int, "Consecutive failed reconnects before giving up [never]."),
    ("--first-connect-timeout", float, "Seconds to wait for the first connection before giving up [60]."),
]


def parse_channel(value: str) -> tuple[str, dict[str, Any]]:
    """``NAME`` or ``NAME:{json filters}``."""
    name, sep, raw = value.partition(":")
    name = name.strip()
    if not name:
        raise click.BadParameter(f"{value!r}: a channel needs a name", param_hint="'--channel'")
    if not sep:
        return name, {}
    try:
        filters = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{value!r}: filters are not JSON ({exc.msg})", param_hint="'--channel'") from None
    if not isinstance(filters, dict):
        raise click.BadParameter(f"{value!r}: filters must be a JSON object", param_hint="'--channel'")
    return name, filters


_CHANNELLED = {name: spec for name, spec in SPECS.items() if spec.channels}
_HISTORY = "/".join(name.capitalize() if name.islower() else name for name in with_history()) or "History"
_AUTH_FORMS = tuple(dict.fromkeys(form for spec in SPECS.values() for form in spec.auth_forms))


# Options only some providers take (``ProviderSpec.options``): one flag each, typed by the default,
# or a choice where Client's annotation is a Literal (``commitment``).
_PROVIDER_OPTIONS: dict[str, tuple[Any, list[str]]] = {}
_CLIENT_PARAMETERS = inspect.signature(Client.__init__).parameters


def _option_type(option: str, default: Any) -> Any:
    annotation = str(getattr(_CLIENT_PARAMETERS.get(option), "annotation", ""))  # a string (postponed annotations)
    literal = re.match(r"Literal\[(.*?)\]", annotation)
    if literal:
        return click.Choice(re.findall(r"[\"']([^\"']+)[\"']", literal.group(1)))
    return type(default) if isinstance(default, (int, float, str)) and not isinstance(default, bool) else str


for _name, _spec in SPECS.items():
    for _option, _default in _spec.options.items():
        _PROVIDER_OPTIONS.setdefault(_option, (_option_type(_option, _default), []))[1].append(_name)

# What each provider-only option does (the flag's help says whose it is and its default).
_PROVIDER_OPTION_HELP = {
    "commitment": "solana commitment level of the logs subscription",
    "max_gap_transactions": "transactions one gap recovery may fetch",
    "silent_trades_after": "seconds an acknowledged trade channel may stay silent while launches flow before it is "
    "reported",
    "group": "consumer group: the members share the stream's entries",
    "consumer": "this member's name in the consumer group",
    "name": "save the reader's position under this name (resume after a restart)",
    "speed": "the recorded pace times this (0: as fast as possible)",
}
# One line per provider: whether it needs a key (the full summaries: `pumpsync --help`).
PROVIDER_HELP = (
    "Needs a key: " + ", ".join(name for name, spec in SPECS.items() if spec.key_required)
    + ". No key: " + ", ".join(name for name, spec in SPECS.items() if not spec.key_required)
    + ". `pumpsync --help` says what each is."
)  # fmt: skip


def client_options(func: F) -> F:
    """The options that make a :class:`pumpsync.Client`."""
    for option, (kind, takers) in reversed(_PROVIDER_OPTIONS.items()):
        default = SPECS[takers[0]].options[option]
        what = _PROVIDER_OPTION_HELP.get(option, option.replace("_", " ").capitalize())
        help_text = f"{'/'.join(takers)} only: {what}" + ("." if default is None else f" [{default}].")
        func = click.option("--" + option.replace("_", "-"), option, type=kind, default=None, help=help_text)(func)
    for flag, kind, help_text in reversed(TUNING):
        func = click.option(flag, type=kind, default=None, help=help_text)(func)
    decorators = [
        click.option(
            "--provider",
            type=click.Choice(PROVIDERS),
            default=DEFAULT_PROVIDER,
            show_default=True,
            help=PROVIDER_HELP,
        ),
        click.option(
            "--source",
            "sources",
            multiple=True,
            metavar="[NAME@]PROVIDER[:CHANNEL,...][=URL]",
            help="Read several sources as one stream, each event once (repeat; instead of --provider, --url and "
            "--channel); NAME@ tells two sources of one provider apart. Keys: PUMPSYNC_<PROVIDER>_API_KEY each, "
            "or --api-key for the one that needs a key.",
        ),
        click.option(
            "--url",
            "url",
            multiple=True,
            help="Stream URL [the provider's]; repeat for one connection per URL.",
        ),
        click.option(
            "--api-key",
            default=None,
            help="API key (visible to other users in `ps`: prefer PUMPSYNC_API_KEY or --api-key-file).",
        ),
        click.option("--api-key-file", type=click.Path(dir_okay=False), default=None, help="File holding the key."),
        click.option(
            "--channel",
            "channels",
            multiple=True,
            metavar="NAME[:JSON]",
            help="Channel with optional filters, repeatable; the default ones are starred ["
            + "; ".join(
                f"{name}: {', '.join(ch + ('*' if ch in spec.default_channels else '') for ch in spec.channels)}"
                for name, spec in _CHANNELLED.items()
            )
            + "].",
        ),
        click.option("--connections", type=int, default=None, help="Redundant connections, de-duplicated [1]."),
        click.option("--since", type=int, default=None, help=f"{_HISTORY}: start with history from this slot."),
        click.option("--rest-url", default=None, help=f"{_HISTORY} REST base for gap recovery [the stream's host]."),
        click.option("--auth", type=click.Choice(_AUTH_FORMS), default=None, help="Where the key goes."),
        click.option("--ca-bundle", type=click.Path(dir_okay=False), default=None, help="CA file for wss://."),
        click.option("--proxy", default=None, help="http:// or socks5:// proxy for the stream and REST."),
        click.option("-v", "--verbose", count=True, help="-v info, -vv debug (logs go to stderr)."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


_OPTION_NAMES = {flag.lstrip("-").replace("-", "_") for flag, _, _ in TUNING} | {
    "url",
    "connections",
    "since",
    "rest_url",
    "auth",
    "ca_bundle",
    "proxy",
    *_PROVIDER_OPTIONS,
}


def parse_source(value: str) -> Source:
    """``[NAME@]PROVIDER[:CHANNEL,...][=URL]``, e.g. ``eu@anaxer:creations,trades=wss://host/v1/stream``
    (``NAME`` labels the source in logs, metrics, ``top`` and errors: two sources of one provider)."""
    head, _, url = value.partition("=")  # a provider and channel names have no "=", a URL may
    label, at, head = head.rpartition("@")
    name = label.strip() or None
    if at and (name is None or not name.isprintable() or len(name) > 64):
        raise click.BadParameter(f"{value!r}: a source name before '@' is 1-64 printable characters",
                                 param_hint="'--source'")  # fmt: skip
    provider, _, names = head.partition(":")
    provider = provider.strip()
    if provider not in SPECS:
        raise click.BadParameter(
            f"{value!r}: {provider!r} is not one of {', '.join(PROVIDERS)}", param_hint="'--source'"
        )
    options: dict[str, Any] = {}
    channels = [name.strip() for name in names.split(",") if name.strip()]
    if channels:
        options["channels"] = {name: {} for name in channels}
    if url.strip():
        options["url"] = url.strip()
    return Source(provider, name=name, **options)


# Options that belong to one provider: with --source, each source says its own.
_PER_PROVIDER = ("url", "channels", "since", "rest_url", "auth")


def client_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Turn the parsed options into :class:`pumpsync.Client` keyword arguments."""
    if params.get("sources"):
        return _sources_kwargs(params)
    kwargs: dict[str, Any] = {name: params[name] for name in _OPTION_NAMES if params.get(name) is not None}
    urls = params.get("url")
    if isinstance(urls, (tuple, list)):  # --url is repeatable: one string, or a list for several
        if len(urls) == 1:
            kwargs["url"] = urls[0]
        elif urls:
            kwargs["url"] = list(urls)
        else:
            kwargs.pop("url", None)
    kwargs["provider"] = params["provider"]
    if params.get("api_key") is not None:
        kwargs["api_key"] = params["api_key"]
    if params.get("api_key_file") is not None:
        kwargs["api_key_file"] = params["api_key_file"]
    channels = params.get("channels") or ()
    if channels:
        kwargs["channels"] = dict(parse_channel(value) for value in channels)
    return kwargs


def _sources_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Several sources: each ``--source`` its own provider, channels and URL; the other options
    are every source's defaults."""
    given = [name for name in _PER_PROVIDER if params.get(name)]
    if given:
        flags = ", ".join("--" + ("channel" if n == "channels" else n.replace("_", "-")) for n in given)
        raise click.UsageError(f"{flags} apply to one provider: with --source write PROVIDER:CHANNEL,...=URL")
    if params.get("provider") not in (None, DEFAULT_PROVIDER) or _given_on_command_line("provider"):
        raise click.UsageError("give either --provider or --source: each --source names its provider")
    kwargs: dict[str, Any] = {
        name: params[name] for name in _OPTION_NAMES - set(_PER_PROVIDER) if params.get(name) is not None
    }
    kwargs["sources"] = [parse_source(value) for value in params["sources"]]
    for name in ("api_key", "api_key_file"):
        if params.get(name) is not None:
            kwargs[name] = params[name]
    return kwargs


def _given_on_command_line(name: str) -> bool:
    """The user typed this option (not its default): a flag that would be ignored is an error."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    source = ctx.get_parameter_source(name)
    return source is not None and source not in (
        click.core.ParameterSource.DEFAULT,
        click.core.ParameterSource.DEFAULT_MAP,
    )


def make_client(params: dict[str, Any]) -> Client:
    """The (not yet started) client the options describe, for ``stream`` and ``top`` alike: the
    key only where the provider needs one (``key_required``), each source's own key
    (``PUMPSYNC_<PROVIDER>_API_KEY``) with ``--source``, and every key redacted from the logs."""
    try:
        kwargs = client_kwargs(params)
        if "sources" in kwargs:  # each source's key is its own (see Client)
            setup_logging(params["verbose"])
            client = Client(**kwargs)
            if len(client.members) > 1:
                setup_logging(params["verbose"], None, *client.source_keys())
            return client
        required = provider_spec(kwargs["provider"]).key_required
        key = choose_api_key(kwargs.get("api_key"), kwargs.get("api_key_file"), required=required)  # flags > env
        setup_logging(params["verbose"], key)
        return Client(**{**kwargs, "api_key": key})
    except ConfigurationError as exc:
        raise configuration_error(exc, sources=bool(params.get("sources"))) from None


def configuration_error(exc: ConfigurationError, sources: bool = False) -> click.UsageError:
    """A ConfigurationError as a one-line CLI error naming the flag (or the environment variable)
    the value came from; with ``sources``, a provider's own option was given in ``--source``."""
    message = str(exc).split(": ", 1)[-1]
    if exc.option.isupper():  # PUMPSYNC_API_KEY_FILE and the like
        return click.UsageError(f"Invalid value in ${exc.option}: {message}")
    flag = "--" + exc.option.replace("_", "-")
    if sources and exc.option in (*_PER_PROVIDER, "sources"):
        flag = "--source"
    elif exc.option == "channels":
        flag = "--channel"
    return click.UsageError(f"Invalid value for '{flag}': {message}")


def setup_logging(verbose: int, key: ApiKey | None = None, *more_keys: ApiKey) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(key))
    for other in more_keys:  # several sources, several keys
        handler.addFilter(RedactingFilter(other))
    # A fatal error is printed once, as the command's own "pumpsync: ..." line, not also as a log line.
    handler.addFilter(lambda record: not getattr(record, "pumpsync_fatal", False))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
