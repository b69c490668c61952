"""What a dialect sends: its one type, apart so that ``base.py`` and ``spec.py`` need not import each other."""

from __future__ import annotations

# A frame a dialect hands over to send: ``str`` goes as a text frame, ``bytes`` as a binary frame
# (a transport whose protocol has messages of its own, gRPC, sends bytes as one message).
Outgoing = str | bytes

__all__ = ["Outgoing"]
