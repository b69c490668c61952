"""Options shared by ``pumpsync stream``, ``pumpsync daemon`` and friends: one definition each."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from pumpsync._keys import choose_api_key
from pumpsync._secrets import ApiKey, RedactingFilter
from pumpsync._sources import Source
from pumpsync.client import Client
from pumpsync.errors import ConfigurationError
from pumpsync.options import GROUPS, declared, flat_name, grouped
from pumpsync.providers import DEFAULT_PROVIDER, provider_spec
from pumpsync.providers import PROVIDERS as SPECS

F = TypeVar("F", bound=Callable[..., Any])

PROVIDERS = tuple(SPECS)


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
_AUTH_FORMS = tuple(dict.fromkeys(form for spec in SPECS.values() for form in spec.auth_forms))


# The option groups' flags, made from their declarations (pumpsync.options): the flag is the
# field's flat name (``--stale-timeout``), its help and default the declaration's. Race has none
# (``prefer`` is a mapping: the daemon's file and the API set it).
_CHECK_TYPES: dict[str, Any] = {"seconds": float, "seconds>=0": float, "seconds|inf": float, "count": int,
                                "count|None": int, "slot": int}  # fmt: skip


def _flag(each: dataclasses.Field[Any], takers: list[str] | None = None) -> Callable[[F], F]:
    """The click option of one declared field (a provider's: ``takers`` are the providers taking it)."""
    name = flat_name(each)
    check, choices, default = each.metadata.get("check", "any"), each.metadata.get("choices"), each.default
    help_text = str(each.metadata.get("help") or name.replace("_", " ").capitalize())
    if takers is not None:
        help_text = f"{'/'.join(takers)} only: {help_text[0].lower()}{help_text[1:]}"
    if default is not None and default is not dataclasses.MISSING and "[" not in help_text:
        shown = "on" if default is True else f"{default:g}" if isinstance(default, float) else str(default)
        help_text = f"{help_text.rstrip('.')} [{shown}]."
    if check == "bool":
        return click.option(f"--{name.replace('_', '-')}/--no-{name.replace('_', '-')}", name, default=None,
                            help=help_text)  # fmt: skip
    if name == "auth":  # the forms the providers have, not every one declared
        kind: Any = click.Choice(_AUTH_FORMS)
    elif choices:
        kind = click.Choice(choices)
    elif check in _CHECK_TYPES:
        kind = _CHECK_TYPES[check]
    elif isinstance(default, (int, float)) and not isinstance(default, bool):
        kind = type(default)  # a provider option declared by its default
    else:
        kind = click.Path(dir_okay=False) if name == "ca_bundle" else str
    return click.option("--" + name.replace("_", "-"), name, type=kind, default=None, help=help_text)


_GROUP_FLAGS = [each for group, kind in GROUPS.items() if group != "race" for each in declared(kind)]
# A provider option's flag: one per flat name, said to be whose.
_PROVIDER_FLAGS: dict[str, tuple[dataclasses.Field[Any], list[str]]] = {}
for _name, _spec in SPECS.items():
    for _field in declared(_spec.options_class):
        _PROVIDER_FLAGS.setdefault(flat_name(_field), (_field, []))[1].append(_name)

# One line per provider: whether it needs a key (the full summaries: `pumpsync --help`).
PROVIDER_HELP = (
    "Needs a key: " + ", ".join(name for name, spec in SPECS.items() if spec.key_required)
    + ". No key: " + ", ".join(name for name, spec in SPECS.items() if not spec.key_required)
    + ". `pumpsync --help` says what each is."
)  # fmt: skip


def client_options(func: F) -> F:
    """The options that make a :class:`pumpsync.Client`."""
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
        *(_flag(each) for each in _GROUP_FLAGS),
        *(_flag(each, takers) for each, takers in _PROVIDER_FLAGS.values()),
        click.option("-v", "--verbose", count=True, help="-v info, -vv debug (logs go to stderr)."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


_OPTION_NAMES = {"url", *(flat_name(each) for each in _GROUP_FLAGS), *_PROVIDER_FLAGS}


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
            takers = {
                SPECS[p].options_class for name in kwargs if name in _PROVIDER_FLAGS for p in _PROVIDER_FLAGS[name][1]
            }
            client = Client(**grouped(kwargs, takers.pop() if len(takers) == 1 else None))  # several: refused
            if len(client.members) > 1:
                setup_logging(params["verbose"], None, *client.source_keys())
            return client
        required = provider_spec(kwargs["provider"]).key_required
        key = choose_api_key(kwargs.get("api_key"), kwargs.get("api_key_file"), required=required)  # flags > env
        setup_logging(params["verbose"], key)
        return Client(**grouped({**kwargs, "api_key": key}, provider_spec(kwargs["provider"]).options_class))
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
