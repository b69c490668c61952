"""OpenPump's trade path checks its fields inline (the bulk path): the same values as the shared
``opt_*`` helpers and ``ratio`` give, for every odd value a frame can hold."""

from __future__ import annotations

import itertools
import math
from typing import Any

from pumpsync.events import TRADE, Event
from pumpsync.providers._anaxer_records import _trade as anaxer_trade
from pumpsync.providers.base import opt_int, opt_num, opt_str, ratio
from pumpsync.providers.openpump import OpenPump

ODD: list[Any] = [None, True, 0, 1, -1, 2**63, -(2**63) - 1, 2**63 - 1, 1.5, 0.0, -0.0, 1e308, 1e-308, math.inf,
                  -math.inf, math.nan, "12.5", "x", "inf", [], {}, 5070588, 2**53, 2**53 + 1, -(2**53) - 1,
                  10**300, 10**400, -(10**400)]  # fmt: skip


def test_inline_checks_match_the_helpers() -> None:
    dialect = OpenPump(0, [])
    for sol, tokens, stamp in itertools.product(ODD, ODD, ODD[:10]):
        obj = {"type": "buy", "mint": "M", "signature": "S", "trader": sol if isinstance(sol, str) else "T",
               "solAmount": sol, "tokenAmount": tokens, "timestamp": stamp}  # fmt: skip
        (event,) = dialect._trade(obj, "buy", 5)
        want_sol, want_tokens = opt_num(sol), opt_num(tokens)
        got = (event.sol_amount, event.token_amount, event.price_sol, event.timestamp, event.trader)
        want = (want_sol, want_tokens, ratio(want_sol, want_tokens), opt_int(stamp), opt_str(obj["trader"]))
        assert repr(got) == repr(want), (sol, tokens, stamp)  # repr: nan, -0.0 and int/float told apart


def test_a_trade_without_a_string_mint_or_signature_is_refused() -> None:
    dialect = OpenPump(0, [])
    for bad in (None, 1, b"M", ["M"]):
        for field in ("mint", "signature"):
            obj = {"type": "buy", "mint": "M", "signature": "S", field: bad}
            outputs = dialect._trade(obj, "buy", 5)
            assert outputs and not any(type(out) is Event and out.kind == TRADE for out in outputs), (field, bad)


def test_the_positional_event_is_the_keyword_one() -> None:
    """Built without ``_make``'s length check: whole, every field where ``Event(...)`` puts it."""
    obj = {"type": "sell", "mint": "M", "signature": "S", "trader": "T", "solAmount": 0.5, "tokenAmount": 5070588,
           "timestamp": 1796670302373}  # fmt: skip
    (event,) = OpenPump(3, [])._trade(obj, "sell", 7)
    want = Event(TRADE, "openpump", "M", "S", None, 1796670302373, 7, 3, False, obj, side="sell", sol_amount=0.5,
                 token_amount=5070588.0, trader="T", price_sol=0.5 / 5070588)  # fmt: skip
    assert type(event) is Event and len(event) == len(Event._fields)
    assert event == want and repr(event) == repr(want) and event._asdict() == want._asdict()


def test_anaxers_positional_trade_is_the_keyword_one() -> None:
    """Anaxer builds its trades the same way (a venue from the swap's source, or none)."""
    for source, venue in (("pumpswap", "pumpswap"), ("pumpfun", "curve"), ("raydium", None), (None, None)):
        record = {"signature": "S", "mint": "M", "side": "buy", "solAmount": 1.5, "tokenAmount": 3.0, "wallet": "W",
                  "timestamp": 1700000000000, "source": source}  # fmt: skip
        event = anaxer_trade(record, 9, 11, 2, True)
        want = Event(TRADE, "anaxer", "M", "S", 9, 1700000000000, 11, 2, True, record, "trades", side="buy",
                     sol_amount=1.5, token_amount=3.0, trader="W", price_sol=0.5, venue=venue)  # fmt: skip
        assert type(event) is Event and len(event) == len(Event._fields) and repr(event) == repr(want)
