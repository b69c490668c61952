"""Built-in simulator: local OpenPump, Anaxer and Solana RPC servers fed by a deterministic market.

::

    from pumpsync.simulator import Simulator

    with Simulator(providers=("openpump", "anaxer"), rate=20.0, seed=1) as sim:
        sim.url("openpump")      # ws://127.0.0.1:PORT/v1/stream
        sim.url("anaxer")        # ws://127.0.0.1:PORT2/v1/stream
        sim.rest_url("anaxer")   # http://127.0.0.1:PORT2 (REST shares the stream's port)

One asyncio loop runs in one background thread; every public method is synchronous and
thread-safe, and returns once its action has been applied on that loop.

The market clock publishes ``rate`` events per second from ``start()`` (``paused=True``
holds it until ``resume()``, so clients can subscribe before the first event exists);
``emit(n, kind)`` publishes on demand and returns the ``Launch`` / ``Trade`` /
``Graduation`` events it published, including followers (a launch's creator buy in the
same transaction, the graduation a buy completes). ``history(provider, channel)`` is
every record a feed published, ``connections(provider)`` snapshots the open sockets,
and ``drop``, ``close``, ``stall``/``unstall``, ``ignore_pings``, ``send_malformed``,
``restart``, ``reject_next``, ``rest_fail_next`` and ``blast`` inject faults and load.

Keys
----
With ``keys=None`` any non-empty key is accepted (so the documents' ``YOUR_API_KEY``
works): OpenPump plan ``enterprise`` (10 connections), Anaxer plan ``pro`` (all channels,
5 connections). Designated test keys:

``sim-invalid``
    refused: OpenPump closes with 1008, Anaxer with 4001 (after a v1 ``unauthorized``
    error frame unless the form is pinned to ``document``), REST answers 401.
``sim-free``
    OpenPump: no streaming in the plan, closed with 4001. Anaxer: ``trades`` forbidden
    (document ``forbidden`` / v1 ``plan_restricted``), 1 connection.
``sim-pro``
    OpenPump Pro: 2 connections (the third is closed with 4001). Anaxer: 2 connections
    (the third is closed with 4003).
``sim-ratelimited``
    Anaxer: closed with 4002 right after connecting; REST answers 429 with Retry-After.

PumpPortal (``/api/data``, key optional in ``?api-key=``) lets every client in; the key decides
whether trade channels stream: ``sim-unfunded``, ``sim-free``, ``sim-invalid`` and no key at all
get the acknowledgement, the unfunded-key message once, then silence; ``sim-funded`` and any other
key stream trades. A second concurrent connection from one address bans it
(``pumpportal_ban_seconds``, an hour by default): HTTP 429 with Retry-After at the upgrade.

With ``keys={"key": "plan"}`` only those keys are valid; plans are ``free``, ``pro`` and
``enterprise`` (OpenPump 0/2/10 connections, Anaxer 1/5/10 connections, Anaxer ``free``
without ``trades``, PumpPortal ``free`` unfunded). A missing key is refused (PumpPortal: unfunded).
Keys are never stored: connections are counted per key by a truncated SHA-256 and only the plan
name is exposed.

Records
-------
OpenPump frames (document 000): ``connected``, ``new_token``, ``token_enriched``
(``enrich_delay`` after ``new_token``; ``bondingCurve.progress`` is a percentage),
``buy`` / ``sell`` (``tokenAmount`` in whole tokens), ``pong``, ``status``. Graduations
have no OpenPump frame.

Anaxer v1 data frames carry the v1 payload (``swap``, ``created``, ``graduated``,
``price``) exactly as the official SDK models it. Document-form frames, REST items and
``history("anaxer")`` carry the same payload plus the document's convenience fields:
trades add ``mint, side, solAmount, tokenAmount, priceSol, exchange``; creations and
graduations add ``exchange``; prices add ``priceSol``.

PumpPortal frames (free-sources.md section 2): ``create`` / ``buy`` / ``sell`` / ``migrate`` by
``txType``, no timestamp or slot, integer-valued amounts as JSON integers; now and then a ``bonk``
launch and a create carrying the USDC mint (``pumpportal_bonk_share``,
``pumpportal_mislabelled_share``); acknowledgements are the captured ``{"message": ...}`` texts.

Solana node
-----------
``providers=("solana",)`` (not started by default) serves a Solana RPC node, see
``solana.py``: ``sim.url("solana")`` is ``ws://127.0.0.1:PORT/`` (WebSocket JSON-RPC:
``logsSubscribe`` / ``logsUnsubscribe`` / ``logsNotification``) and ``sim.rest_url("solana")``
the same port over HTTP (POST JSON-RPC: ``getSignaturesForAddress``, ``getTransaction``).
No key is needed; one may come as the URL's path segment, ``?api-key=`` or Bearer.
``sim-invalid`` gets HTTP 401 (upgrade and POST), ``sim-ratelimited`` HTTP 429, ``sim-free``
a JSON-RPC error (-32601) to ``logsSubscribe``. ``history("solana", channel)`` lists the
streamed transactions (``signature, err, logs, slot, blockTime, kind, channels``; channel
``creations`` / ``trades`` / ``graduations`` keeps those carrying such an event).
Faults: the generic ones (``drop``, ``close``, ``stall``, ``ignore_pings`` for WebSocket
pings, ``send_malformed``, ``restart``, ``reject_next``, ``blast``), ``rest_fail_next(...,
provider="solana")`` for history calls, and ``solana_layout``, ``solana_next``
(``truncated`` / ``oversized``), ``solana_inject`` (``failed`` / ``unknown_event`` /
``undecodable``), ``solana_mute_subscribe`` and ``solana_idle_timeout``.

Determinism
-----------
The same ``seed`` gives the same sequence of event contents (mints, wallets, signatures,
names, amounts, curve state). Slots (about 2.5 per second) and timestamps follow the
wall clock.
"""

try:  # the tools extra's server: a library-only install says which extra, not only which module
    import websockets  # noqa: F401
except ModuleNotFoundError as exc:
    raise ModuleNotFoundError(
        f"pumpsync.simulator needs the tools extra ({exc}): pip install 'pumpsync[tools]'", name=exc.name
    ) from None

from pumpsync.simulator.connection import ConnectionInfo, SubscriptionInfo
from pumpsync.simulator.faults import MALFORMED_KINDS
from pumpsync.simulator.market import Graduation, Launch, MarketEvent, Trade
from pumpsync.simulator.plans import DESIGNATED_KEYS
from pumpsync.simulator.simulator import PROVIDERS, Simulator

__all__ = [
    "DESIGNATED_KEYS",
    "MALFORMED_KINDS",
    "PROVIDERS",
    "ConnectionInfo",
    "Graduation",
    "Launch",
    "MarketEvent",
    "Simulator",
    "SubscriptionInfo",
    "Trade",
]
