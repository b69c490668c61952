"""``geyser`` (alias ``yellowstone``): Yellowstone gRPC, the stream Triton, Helius LaserStream,
QuickNode, Chainstack and others serve. See ``dialect.py`` for the protocol, ``_proto.py`` for the
codec, ``_transport.py`` for grpcio, ``_history.py`` for gaps beyond the server's replay window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pumpsync.errors import ConfigurationError
from pumpsync.options import ProviderOptions, option
from pumpsync.providers import solana
from pumpsync.providers.geyser._counts import GeyserCollector
from pumpsync.providers.geyser._grpc import import_grpc, tracing_unsafe
from pumpsync.providers.geyser._transport import DEFAULT_RECEIVE_LIMIT, GrpcTransport, target_of
from pumpsync.providers.geyser.dialect import DEFAULT_URL, FILTER_REASONS, MALFORMED, Geyser
from pumpsync.providers.solana import CHANNELS, COMMITMENTS, DEFAULT_COMMITMENT, FILTERS, check_config
from pumpsync.providers.spec import HistorySource, ProviderSpec, Transport

if TYPE_CHECKING:
    from pumpsync.providers.spec import ClientConfig


def _check(config: ClientConfig) -> None:
    check_config(config)  # the commitment, the channels' filters (the Solana source's)
    if config.proxy:  # grpcio would take its own $https_proxy; an explicit proxy it cannot honour is refused
        raise ConfigurationError("proxy", "the geyser provider (gRPC) does not go through a proxy")
    for url in config.urls:
        try:
            target_of(url)
        except ValueError as exc:
            raise ConfigurationError("url", str(exc)) from None
    try:
        import_grpc()
    except ImportError as exc:
        raise ConfigurationError("provider", str(exc)) from None
    if config.api_key and tracing_unsafe():
        raise ConfigurationError(
            "api_key", "GRPC_TRACE is set and grpcio is loaded: its tracers would print the x-token; unset GRPC_TRACE"
        )


def _transport(config: ClientConfig, index: int) -> Transport:
    return GrpcTransport(config, index)


def _history(config: ClientConfig) -> HistorySource:
    from pumpsync.providers.geyser._history import make_history

    return make_history(config)


@dataclass(frozen=True)
class GeyserOptions(ProviderOptions):
    """Geyser's own options (``options=pumpsync.GeyserOptions(...)``)."""

    commitment: Literal["processed", "confirmed", "finalized"] = option(
        DEFAULT_COMMITMENT,
        "Commitment level of the subscription (processed: what a dead slot carried is dropped).",
        choices=COMMITMENTS,
    )


SPEC = ProviderSpec(
    name="geyser",
    summary="Yellowstone gRPC (Geyser): pump.fun and PumpSwap transactions as the validator sees them; x-token",
    dialect=Geyser,
    default_url=DEFAULT_URL,
    url_schemes=("https", "grpcs", "http", "grpc"),
    channels=CHANNELS,
    default_channels=CHANNELS,
    filters=FILTERS,
    auth_forms=("header", "none"),
    default_auth="header",
    key_required=False,  # a self-hosted server may take no token
    heartbeat="server",  # the server pings (every 10-15 s); each ping is answered
    max_frame_size=DEFAULT_RECEIVE_LIMIT,  # grpcio's receive limit (max_frame_size=)
    history=_history,
    options=GeyserOptions,
    check=_check,
    transport=_transport,
    filter_reasons=(*FILTER_REASONS, *solana.SPEC.filter_reasons),  # the decoder's are the Solana source's
    malformed_reasons=(*MALFORMED, *solana.SPEC.malformed_reasons, "text_frame"),
    metrics=GeyserCollector,
    frames="binary",
)

__all__ = ["SPEC", "Geyser", "GrpcTransport"]
