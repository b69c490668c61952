"""Importing grpcio so that it cannot print the token.

grpcio's C core reads ``GRPC_TRACE`` once, when it is imported; its ``api``/``http`` tracers (and
``all``) write every call's metadata to stderr, ``x-token`` included (checked with grpcio 1.85:
``key=x-token value=... '<token>'``), past any Python log filter. So the variable is removed before
the import (with a warning naming it), and where grpcio was imported already while it is set, a
client with a token refuses to start rather than print it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

INSTALL = "the geyser provider needs grpcio: pip install 'pumpsync[geyser]'"
log = logging.getLogger("pumpsync.geyser")


def import_grpc() -> Any:
    """grpcio without its metadata tracers, or a one-line ``ImportError`` naming the install command."""
    if "grpc" not in sys.modules:
        trace = os.environ.pop("GRPC_TRACE", None)
        if trace:
            log.warning("GRPC_TRACE ignored: grpcio's tracers print call metadata (the x-token) to stderr")
    try:
        import grpc
    except ImportError:
        raise ImportError(INSTALL) from None
    return grpc


def tracing_unsafe() -> bool:
    """grpcio is loaded and GRPC_TRACE is set: its tracers may be printing metadata."""
    return "grpc" in sys.modules and bool(os.environ.get("GRPC_TRACE"))


__all__ = ["INSTALL", "import_grpc", "tracing_unsafe"]
