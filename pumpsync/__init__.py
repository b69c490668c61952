"""pumpsync: real-time Pump.fun launches and trades (OpenPump, Anaxer, PumpPortal, Solana RPC, Redis, replay)
for plain synchronous Python.

::

    import pumpsync

    with pumpsync.connect("anaxer", api_key=KEY, channels={"creations": {}}) as stream:
        for event in stream:
            print(event.kind, event.mint)
"""

from pumpsync._hooks import ConnectInfo, DisconnectInfo, GapInfo
from pumpsync._sources import Source
from pumpsync._version import __version__
from pumpsync.client import Client, EventQueue, connect
from pumpsync.config import ClientConfig
from pumpsync.errors import (
    AllSourcesFailed,
    AuthenticationError,
    ClientClosed,
    ConfigurationError,
    ConnectionLost,
    PlanError,
    ProviderRefused,
    PumpsyncError,
    RequestTimeout,
    SourceFailed,
    SubscriptionRejected,
    UsageError,
)
from pumpsync.events import KINDS, Event, EventKind
from pumpsync.views import Graduation, Launch, Migration, Price, TokenEnriched, Trade, TypedEvent, Unknown

__all__ = [
    "KINDS",
    "AllSourcesFailed",
    "AuthenticationError",
    "Client",
    "ClientClosed",
    "ClientConfig",
    "ConfigurationError",
    "ConnectInfo",
    "ConnectionLost",
    "DisconnectInfo",
    "Event",
    "EventKind",
    "EventQueue",
    "GapInfo",
    "Graduation",
    "Launch",
    "Migration",
    "PlanError",
    "Price",
    "ProviderRefused",
    "PumpsyncError",
    "RequestTimeout",
    "Source",
    "SourceFailed",
    "SubscriptionRejected",
    "TokenEnriched",
    "Trade",
    "TypedEvent",
    "Unknown",
    "UsageError",
    "__version__",
    "connect",
]
