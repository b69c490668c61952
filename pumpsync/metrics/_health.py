"""What "healthy" and "ready" mean to the outside: the supervisor's verdict, read as it stands.

The supervisor (``pumpsync._supervisor``) is the one place that judges a connection, on the
monotonic clock: open, and something arrived within ``stale_timeout``. Nothing here looks at a
timestamp, so that ``/readyz``, sd_notify, the ``pumpsync_connection_healthy`` gauge and
``Client.ready`` can never disagree, nor be fooled by the wall clock stepping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pumpsync._stats import ConnectionStats

if TYPE_CHECKING:
    from pumpsync.client import Client


def connection_healthy(conn: ConnectionStats, stale_timeout: float | None = None, now: float | None = None) -> bool:
    """The supervisor's verdict on one connection.

    ``stale_timeout`` and ``now`` are accepted for compatibility and ignored: the supervisor
    applies the client's own ``stale_timeout``."""
    return conn.healthy


def client_ready(client: Client) -> bool:
    """At least one connection is healthy (``/readyz``, sd_notify READY=1): ``client.ready``."""
    return client.ready


__all__ = ["client_ready", "connection_healthy"]
