"""PumpPortal's trade path reads its amounts inline and builds the event positionally (the bulk path):
the same event as the shared helpers and ``Event(...)`` with keywords give, for every odd value."""

from __future__ import annotations

import itertools
import math
from typing import Any

from pphelpers import MINT_A, WALLET

from pumpsync.events import TRADE, Event
from pumpsync.providers.base import Subscription, opt_amount, ratio
from pumpsync.providers.pumpportal import PumpPortal

ODD: list[Any] = [None, True, 0, 3, -1, 2**63, 10**400, 1.5, 0.0, -0.0, -2.5, 1e308, 1e-308, math.inf, -math.inf,
                  math.nan, "12.5", "x", [], {}]  # fmt: skip
SIGNATURE = "5EMqqRbMjAPF4tBPNw1TJNv6LcFyFMJ8rhXJfVihaZVSYkvorn2j85o4h222XGDretUX4MR54MsnRUhXuMfT6SiF"


def _want(obj: dict[str, Any]) -> Event | None:
    """The event as the keyword path built it (None: the frame is invalid)."""
    amounts = [opt_amount(obj.get(name)) for name in ("solAmount", "tokenAmount", "marketCapSol")]
    if any(
        a is None and obj.get(name) is not None
        for a, name in zip(amounts, ("solAmount", "tokenAmount", "marketCapSol"), strict=True)
    ):
        return None
    sol, tokens, cap = amounts
    pool = obj.get("pool", "pump")
    venue = {"pump": "curve", "pump-amm": "pumpswap"}.get(pool) if isinstance(pool, str) else None
    return Event(TRADE, "pumpportal", MINT_A, SIGNATURE, None, None, 7, 2, False, obj, "token_trades", side="sell",
                 sol_amount=sol, token_amount=tokens, trader=WALLET, price_sol=ratio(sol, tokens), market_cap_sol=cap,
                 venue=venue)  # fmt: skip


def test_inline_amounts_and_positional_event_match_the_keyword_path() -> None:
    dialect = PumpPortal(2, [Subscription("token_trades", {"keys": [MINT_A]})])
    pools: list[Any] = ["pump", "pump-amm", "bonk", 5]
    for n, (sol, tokens, cap) in enumerate(itertools.product(ODD, ODD, ODD[:12])):
        obj = {"signature": SIGNATURE, "mint": MINT_A, "traderPublicKey": WALLET, "txType": "sell", "solAmount": sol,
               "tokenAmount": tokens, "marketCapSol": cap, "pool": pools[n % 4]}  # fmt: skip
        outputs = dialect._trade(obj, "sell", 7)
        want = _want(obj)
        if want is None:
            assert not any(type(o) is Event and o.kind == TRADE for o in outputs), obj
            continue
        (event,) = outputs
        assert type(event) is Event and len(event) == len(Event._fields)
        assert repr(event) == repr(want), obj  # repr: nan, -0.0 and int/float told apart
    no_pool = {"signature": SIGNATURE, "mint": MINT_A, "traderPublicKey": WALLET, "solAmount": 1.0, "tokenAmount": 2.0,
               "marketCapSol": 30.0}  # fmt: skip
    assert dialect._trade(no_pool, "sell", 7) == [_want(no_pool)]  # frames from before "pool": curve trades
