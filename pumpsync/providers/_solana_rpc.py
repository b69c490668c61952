"""The Solana node's JSON-RPC settings that the live provider (``solana``) and its history
(``solana_history``) share: the commitment, the HTTP URL beside the WebSocket one, the gap budget.
A leaf: the history imports it without importing the provider module (which makes the history)."""

from __future__ import annotations

from typing import Any

from pumpsync.errors import ConfigurationError

COMMITMENTS = ("processed", "confirmed", "finalized")
# confirmed: voted on by a supermajority, so practically never rolled back (processed shows events of
# forks that are then dropped: trades that never happened), yet ~13 s ahead of finalized; and it is
# the lowest commitment getSignaturesForAddress / getTransaction accept, so live and history agree.
DEFAULT_COMMITMENT = "confirmed"
MAX_GAP_TRANSACTIONS = 2000  # getTransaction calls one gap may make (beyond: counted as lost)


def commitment_of(config: Any) -> str:
    """The client's ``commitment`` option (a generic provider option), checked."""
    value = getattr(config, "commitment", None) or DEFAULT_COMMITMENT
    if value not in COMMITMENTS:
        raise ConfigurationError("commitment", f"{value!r} is not one of {', '.join(COMMITMENTS)}")
    return str(value)


def http_url(ws_url: str) -> str:
    """The node's HTTP JSON-RPC URL: the same host (and path, and key), ``wss`` -> ``https``."""
    if ws_url.startswith("wss://"):
        return "https://" + ws_url[len("wss://") :]
    if ws_url.startswith("ws://"):
        return "http://" + ws_url[len("ws://") :]
    return ws_url


__all__ = ["COMMITMENTS", "DEFAULT_COMMITMENT", "MAX_GAP_TRANSACTIONS", "commitment_of", "http_url"]
