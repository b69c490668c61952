"""The exceptions pumpsync raises.

::

    PumpsyncError
    ├── ConfigurationError        invalid option value (also a ValueError)
    ├── ProviderRefused           the provider refused us for good; retrying will not help
    │   ├── AuthenticationError   the API key was refused (OpenPump 1008, Anaxer 4001 / "unauthorized")
    │   └── PlanError             the plan does not allow it (OpenPump 4001, Anaxer "forbidden"/"plan_restricted"
    │                             on every channel, or more connections than the plan allows)
    ├── SubscriptionRejected      one channel was refused; the others keep streaming
    ├── ConnectionLost            the client gave up reconnecting (``max_retries`` reached)
    ├── ThreadFailed              one of the client's threads ended unexpectedly (fatal; a bug to report)
    ├── ClientClosed              the client was closed while you were waiting on it
    ├── SourceFailed              one source of several failed for good; the others go on
    ├── AllSourcesFailed          every source of several failed for good (fatal)
    ├── UsageError                the call does not fit the client's state or provider, raised at once
    │                             (get() or iteration before start(), start twice or after close,
    │                             ``status()`` on a provider without it, unsubscribing an unknown channel)
    └── RequestTimeout            a request to the provider got no answer in time (also a TimeoutError)

Fatal errors (``ProviderRefused``, ``ConnectionLost``, ``AllSourcesFailed``) stop every connection. They reach you
as the last item of ``client.queue`` (items are ``Event`` or ``PumpsyncError`` instances),
from ``client.raise_for_error()``, and as an exception raised by the ``connect()`` iterator.
"""

from __future__ import annotations


class PumpsyncError(Exception):
    """Base class of every pumpsync error."""

    fatal = False


class ConfigurationError(PumpsyncError, ValueError):
    """An option has an invalid value. The message names the option."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"invalid {option}: {message}")
        self.option = option


class ProviderRefused(PumpsyncError):
    """The provider refused the connection or the request in a way retrying cannot fix."""

    fatal = True

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        close_code: int | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.close_code = close_code
        self.error_code = error_code


class AuthenticationError(ProviderRefused):
    """The API key is missing or invalid."""


class PlanError(ProviderRefused):
    """The plan does not include this stream, or allows fewer connections."""


class SubscriptionRejected(PumpsyncError):
    """The provider refused one subscription; the other channels are unaffected."""

    def __init__(self, channel: str, code: str, message: str, *, provider: str) -> None:
        super().__init__(f"{provider} rejected channel {channel!r} ({code}): {message}")
        self.channel = channel
        self.code = code
        self.provider = provider


class ConnectionLost(PumpsyncError):
    """Reconnecting was given up (``max_retries`` consecutive failures)."""

    fatal = True


class ThreadFailed(PumpsyncError):
    """A thread of the client ended unexpectedly (a bug of pumpsync's): the client stops loudly
    rather than run on without it. ``thread`` names its kind (a metric label)."""

    fatal = True

    def __init__(self, message: str, thread: str) -> None:
        super().__init__(message)
        self.thread = thread


class ClientClosed(PumpsyncError):
    """The client was closed."""


class SourceFailed(PumpsyncError):
    """One source of a multi-source client failed for good (``error``, e.g. its key was refused);
    the other sources go on. Not fatal: the stream is degraded, not dead."""

    def __init__(self, source: str, error: PumpsyncError) -> None:
        super().__init__(f"source {source} failed: {error}")
        self.source = source
        self.error = error


class AllSourcesFailed(PumpsyncError):
    """Every source of a multi-source client failed for good; ``errors`` maps each to its error."""

    fatal = True

    def __init__(self, message: str, errors: dict[str, PumpsyncError]) -> None:
        super().__init__(message)
        self.errors = errors


class EndOfStream(ClientClosed):
    """The source has no more events (a replay reached the end of its recording): iteration ends."""


class UsageError(PumpsyncError, RuntimeError):
    """A method was called where it cannot work: a programming mistake, not a provider's answer."""


class RequestTimeout(PumpsyncError, TimeoutError):
    """A request to the provider (``Client.status()``) got no answer within its timeout."""


__all__ = [
    "AllSourcesFailed",
    "AuthenticationError",
    "ClientClosed",
    "ConfigurationError",
    "ConnectionLost",
    "EndOfStream",
    "PlanError",
    "ProviderRefused",
    "PumpsyncError",
    "RequestTimeout",
    "SourceFailed",
    "SubscriptionRejected",
    "ThreadFailed",
    "UsageError",
]
