"""The market view: per-token state, candles, developer and sniper signals from any event stream.

::

    market = pumpsync.Market(sol_usd=150.0)
    with pumpsync.connect("anaxer", api_key=KEY, channels={"creations": {}, "trades": {}}) as stream:
        for event in market.wrap(stream):
            view = market.token(event.mint)
"""

from pumpsync.market._candles import INTERVALS, Candle, fill_gaps
from pumpsync.market._market import MAX_TOKENS, SORTS, Market, matches
from pumpsync.market._pyth import PythPrice, PythSolUsd, decode_price_update
from pumpsync.market._store import CANDLES_SCHEMA, candle_json, load_candles, store_candles
from pumpsync.market._view import DevSell, Launch, TokenView, Window

__all__ = [
    "CANDLES_SCHEMA",
    "INTERVALS",
    "MAX_TOKENS",
    "SORTS",
    "Candle",
    "DevSell",
    "Launch",
    "Market",
    "PythPrice",
    "PythSolUsd",
    "TokenView",
    "Window",
    "candle_json",
    "decode_price_update",
    "fill_gaps",
    "load_candles",
    "matches",
    "store_candles",
]
