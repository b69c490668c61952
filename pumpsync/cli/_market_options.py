"""The market-view options shared by ``pumpsync stream`` and ``pumpsync top``: SOL/USD and filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from pumpsync.errors import ConfigurationError
from pumpsync.market import Market, PythSolUsd

F = TypeVar("F", bound=Callable[..., Any])

# option name -> Market.tokens() filter
FILTERS = {
    "min_mc_usd": "min_market_cap_usd",
    "min_mc_sol": "min_market_cap_sol",
    "max_age": "max_age_s",
    "min_volume_5m": "min_volume_5m_sol",
    "min_holders": "min_holders",
    "max_dev_share": "max_dev_share",
    "max_first_slot_buyers": "max_first_slot_buyers",
}

_OPTIONS = [
    click.option("--sol-usd", type=click.FloatRange(min=0, min_open=True), help="SOL/USD price for USD figures."),
    click.option("--pyth-rpc", metavar="URL", help="Read SOL/USD from Pyth's SOL/USD account through this RPC node."),
    click.option("--min-mc-usd", type=click.FloatRange(min=0), help="Only mints with a market cap of at least USD."),
    click.option("--min-mc-sol", type=click.FloatRange(min=0), help="Only mints with a market cap of at least SOL."),
    click.option("--max-age", type=click.FloatRange(min=0), help="Only mints launched at most SECONDS ago."),
    click.option("--min-volume-5m", type=click.FloatRange(min=0), help="Only mints with 5-min volume >= SOL."),
    click.option("--min-holders", type=click.IntRange(min=0), help="Only mints with at least N holders (estimate)."),
    click.option("--max-dev-share", type=click.FloatRange(min=0), help="Only mints whose developer holds < PERCENT."),
    click.option("--max-first-slot-buyers", type=click.IntRange(min=0), help="At most N launch-slot buyers."),
]


def market_options(func: F) -> F:
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def market_filters(params: dict[str, Any]) -> dict[str, Any]:
    """The Market filters the options ask for (and removes every market option from ``params``)."""
    return {FILTERS[name]: value for name in FILTERS if (value := params.pop(name, None)) is not None}


def make_market(params: dict[str, Any], filters: dict[str, Any]) -> Market:
    """A Market with the SOL/USD source the options give; ConfigurationError if a USD filter has none."""
    fixed, rpc = params.pop("sol_usd", None), params.pop("pyth_rpc", None)
    if fixed is not None and rpc is not None:
        raise ConfigurationError("sol-usd", "give one SOL/USD source: --sol-usd or --pyth-rpc, not both")
    if "min_market_cap_usd" in filters and fixed is None and rpc is None:
        raise ConfigurationError("min-mc-usd", "it needs a SOL/USD price: --sol-usd PRICE or --pyth-rpc URL")
    return Market(sol_usd=PythSolUsd(rpc) if rpc else fixed)
