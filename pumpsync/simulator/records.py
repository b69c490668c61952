"""Wire shapes of market events: OpenPump frames and Anaxer v1 payloads / document records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pumpsync.simulator.market import (
    LAMPORTS_PER_SOL,
    SOL_DECIMALS,
    SOL_MINT,
    TOKEN_DECIMALS,
    TOKEN_UNIT,
    Graduation,
    Launch,
    MarketEvent,
    Token,
    Trade,
)

SOURCE = "pumpfun"

# Anaxer channel -> v1 payload "type".
CHANNEL_TYPES = {"trades": "swap", "creations": "created", "graduations": "graduated", "prices": "price"}


# -- OpenPump (document 000) ---------------------------------------------------------------


def openpump_new_token(launch: Launch) -> dict[str, Any]:
    return {
        "type": "new_token",
        "timestamp": launch.timestamp,
        "mint": launch.mint,
        "signature": launch.signature,
        "creator": launch.token.creator,
    }


def openpump_enriched(launch: Launch, now_ms: int) -> dict[str, Any]:
    curve = launch.curve
    return {
        **openpump_new_token(launch),
        "type": "token_enriched",
        "timestamp": now_ms,
        "name": launch.token.name,
        "symbol": launch.token.symbol,
        "description": launch.token.description,
        "image": launch.token.image,
        "bondingCurve": {
            "progress": round(curve.progress, 4),
            "solRaised": round(curve.sol_raised, 9),
            "currentPrice": float(f"{curve.price_sol:.6e}"),
            "marketCap": round(curve.market_cap_sol, 6),
        },
    }


def openpump_trade(trade: Trade) -> dict[str, Any]:
    return {
        "type": trade.side,
        "timestamp": trade.timestamp,
        "mint": trade.mint,
        "signature": trade.signature,
        "trader": trade.trader,
        "solAmount": round(trade.sol_amount, 9),
        "tokenAmount": trade.token_raw // TOKEN_UNIT,  # whole tokens, an integer as in the document
    }


# -- Anaxer v1 payloads (the SDK's models.py) --------------------------------------------------


def _leg(mint: str, raw: int, decimals: int) -> dict[str, Any]:
    return {"mint": mint, "amount": str(raw), "uiAmount": raw / 10**decimals, "decimals": decimals}


def swap_payload(trade: Trade) -> dict[str, Any]:
    sol_leg = _leg(SOL_MINT, trade.sol_lamports, SOL_DECIMALS)
    token_leg = _leg(trade.mint, trade.token_raw, TOKEN_DECIMALS)
    legs = {"from": sol_leg, "to": token_leg} if trade.side == "buy" else {"from": token_leg, "to": sol_leg}
    return {
        "type": "swap",
        "source": "pumpswap" if trade.venue == "pumpswap" else SOURCE,
        "wallet": trade.trader,
        "volumeUsd": round(trade.sol_amount * trade.sol_usd, 4),
        "swap": legs,
        "signature": trade.signature,
        "slot": trade.slot,
        "timestamp": trade.timestamp,
    }


def _token_fields(token: Token) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "mint": token.mint,
        "name": token.name,
        "symbol": token.symbol,
        "creator": token.creator,
        "uri": token.uri,
        "mayhemMode": token.mayhem_mode,
        "socials": {
            "website": token.socials.website,
            "twitter": token.socials.twitter,
            "telegram": token.socials.telegram,
        },
    }


def created_payload(launch: Launch) -> dict[str, Any]:
    return {
        "type": "created",
        **_token_fields(launch.token),
        "signature": launch.signature,
        "slot": launch.slot,
        "timestamp": launch.timestamp,
    }


def graduated_payload(grad: Graduation) -> dict[str, Any]:
    return {
        "type": "graduated",
        **_token_fields(grad.token),
        "liquiditySol": grad.liquidity_sol,
        "timeToGraduateSeconds": grad.time_to_graduate_s,
        "signature": grad.signature,
        "slot": grad.slot,
        "timestamp": grad.timestamp,
    }


def price_payload(trade: Trade) -> dict[str, Any]:
    price = trade.curve.price_sol
    return {
        "type": "price",
        "source": SOURCE,
        "mint": trade.mint,
        "price": {"sol": price, "usd": price * trade.sol_usd},
        "marketCapUsd": round(trade.curve.market_cap_sol * trade.sol_usd, 2),
        "slot": trade.slot,
        "timestamp": trade.timestamp,
    }


# -- Anaxer document form: the v1 payload plus the document's convenience fields ------------


@dataclass(frozen=True)
class AnaxerRecord:
    channel: str
    payload: dict[str, Any]  # pure v1 payload (v1 data frames)
    record: dict[str, Any]  # payload + document fields (document frames, REST, history)

    @property
    def slot(self) -> int:
        slot: int = self.payload["slot"]
        return slot

    @property
    def mint(self) -> str | None:
        mint: str | None = self.record.get("mint")
        return mint


def _trade_record(trade: Trade) -> AnaxerRecord:
    payload = swap_payload(trade)
    record = {
        **payload,
        "mint": trade.mint,
        "side": trade.side,
        "solAmount": trade.sol_lamports / LAMPORTS_PER_SOL,
        "tokenAmount": trade.token_raw / TOKEN_UNIT,
        "priceSol": trade.price_sol,
        "exchange": SOURCE,
    }
    return AnaxerRecord("trades", payload, record)


def anaxer_records(event: MarketEvent) -> list[AnaxerRecord]:
    """The channel records one market event produces, in publication order."""
    if isinstance(event, Launch):
        payload = created_payload(event)
        return [AnaxerRecord("creations", payload, {**payload, "exchange": SOURCE})]
    if isinstance(event, Graduation):
        payload = graduated_payload(event)
        return [AnaxerRecord("graduations", payload, {**payload, "exchange": SOURCE})]
    price = price_payload(event)
    return [
        _trade_record(event),
        AnaxerRecord("prices", price, {**price, "priceSol": price["price"]["sol"]}),
    ]
