"""Text lines: full mints, fitted to the terminal by cutting details, never the mint (issue 17, item 3)."""

from __future__ import annotations

import io

from pumpsync.cli._render import terminal_width, to_text
from pumpsync.events import Event

MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
TRADER = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"


def trade(**fields: object) -> Event:
    base = Event("trade", "anaxer", MINT, "sig", 1, None, 1_700_000_000_123, 0, False, {}, "trades")
    return base._replace(**{"side": "buy", "sol_amount": 1.5, "trader": TRADER, **fields})


def test_a_pipe_gets_the_whole_line() -> None:
    line = to_text(trade())
    assert MINT in line and TRADER in line and "1.5000 SOL" in line and "BUY" in line
    assert terminal_width(io.StringIO()) is None


def test_an_80_column_terminal_cuts_the_details_not_the_mint() -> None:
    for width in (80, 60, 20):
        line = to_text(trade(), width)
        assert MINT in line
        assert len(line) <= max(width, line.index(MINT) + len(MINT) + 1)
    assert to_text(trade(), 200) == to_text(trade())


def test_tokens_show_symbol_name_and_curve_after_the_mint() -> None:
    event = Event("token_enriched", "openpump", MINT, "s", None, None, 1_700_000_000_123, 0, True, {})
    line = to_text(event._replace(symbol="PEPE", name="Pepe", bonding_curve_progress=12.5, market_cap_sol=30.0))
    assert line.index(MINT) < line.index("PEPE (Pepe)") < line.index("mcap 30.0 SOL") < line.index("curve 12%")
    assert line.endswith("[backfill]")


def test_control_characters_never_reach_the_terminal() -> None:
    line = to_text(trade(trader="\x1b]0;pwned\x07"))
    assert "\x1b" not in line and "\x07" not in line
