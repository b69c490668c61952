"""The layout table and decoder of the pump.fun program's events, on real data.

Expected values are those stated in shared/reference/free-sources.md section 1 for the two captured
lines; the rest of each event's fields (not stated there) are checked against the same bytes as
re-read by hand below (struct at fixed offsets), independently of the decoder's plans.
"""

from __future__ import annotations

import base64
import json
import os
import random
import struct
from pathlib import Path
from typing import Any

import base58 as reference_b58  # an independent implementation, as the reference
import pytest

from pumpsync.providers import _borsh
from pumpsync.providers._borsh import (
    LAYOUTS,
    OTHER_EVENTS,
    Decoded,
    b58decode,
    b58encode,
    decode_cpi_data,
    decode_event,
    decode_program_data,
    discriminator,
)

FIXTURES = Path(__file__).parent / "fixtures"
SOL_MINT = "11111111111111111111111111111111"
MINT = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"
CREATOR = "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"


def captured() -> list[str]:
    lines = (FIXTURES / "captured_program_data.txt").read_text().splitlines()
    return [line.removeprefix("Program data: ") for line in lines]


CREATE = {
    "name": "The Ass Statue",
    "symbol": "TAS",
    "uri": "https://meta.uxento.io/data/714b0bec-90cb-4cbb-9598-b7bcbcd3bd06",
    "mint": MINT,
    "bonding_curve": "3jJ83NDorkbFkF1JKbEfFWGeX16aXUiwby9RwJm9kat3",
    "user": CREATOR,
    "creator": CREATOR,
    "timestamp": 1785327618,
    "virtual_token_reserves": 1_073_000_000_000_000,
    "virtual_sol_reserves": 30_000_000_000,
    "real_token_reserves": 793_100_000_000_000,
    "token_total_supply": 1_000_000_000_000_000,
    "token_program": "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
    "is_mayhem_mode": False,
    "is_cashback_enabled": True,
    "quote_mint": SOL_MINT,
    "virtual_quote_reserves": 30_000_000_000,
}

TRADE = {
    "mint": MINT,
    "sol_amount": 2_962_962_962,
    "token_amount": 96_449_438_144_093,
    "is_buy": True,
    "user": CREATOR,
    "timestamp": 1785327618,
    "virtual_sol_reserves": 32_962_962_962,
    "virtual_token_reserves": 976_550_561_855_907,
    "real_sol_reserves": 2_962_962_962,
    "real_token_reserves": 696_650_561_855_907,
    "fee_recipient": "62qc2CNXwrYqQScmEdiZFFAnJR262PxWEuNQtxfafNgV",
    "fee_basis_points": 95,
    "fee": 28_148_149,
    "creator": CREATOR,
    "creator_fee_basis_points": 0,
    "creator_fee": 0,
    "track_volume": False,
    "total_unclaimed_tokens": 0,
    "total_claimed_tokens": 0,
    "current_sol_volume": 0,
    "last_update_timestamp": 0,
    "ix_name": "buy_exact_sol_in",
    "mayhem_mode": False,
    "cashback_fee_basis_points": 30,
    "cashback": 8_888_889,
    "buyback_fee_basis_points": 5000,
    "buyback_fee": 14_074_074,
    "shareholders": [],
    "quote_mint": SOL_MINT,
    "quote_amount": 2_962_962_962,
    "virtual_quote_reserves": 32_962_962_962,
    "real_quote_reserves": 2_962_962_962,
}


def test_captured_create_line_every_field() -> None:
    data = base64.b64decode(captured()[0])
    assert len(data) == 343
    decoded = decode_program_data(captured()[0])
    assert decoded == Decoded("CreateEvent", CREATE)
    assert list(decoded.fields) == [name for name, _ in LAYOUTS[0].fields][: len(CREATE)]  # IDL order, May 2026


def test_captured_trade_line_every_field() -> None:
    data = base64.b64decode(captured()[1])
    assert len(data) == 371
    decoded = decode_program_data(captured()[1])
    assert decoded == Decoded("TradeEvent", TRADE)
    assert list(decoded.fields) == [name for name, _ in LAYOUTS[1].fields][: len(TRADE)]


def test_captured_values_by_hand() -> None:
    """The figures the reference states, re-read at fixed offsets without the decoder."""
    data = base64.b64decode(captured()[1])
    assert data[:8].hex() == "bddb7fd34ee661ee"
    sol, tokens, is_buy = struct.unpack_from("<QQB", data, 8 + 32)
    assert (sol, tokens, is_buy) == (2_962_962_962, 96_449_438_144_093, 1)
    assert reference_b58.b58encode(data[8:40]).decode() == MINT


def test_table_matches_the_idl() -> None:
    idl = json.loads((FIXTURES / "pump_idl_events.json").read_text())
    assert idl["address"] == "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
    discriminators = {event["name"]: bytes(event["discriminator"]).hex() for event in idl["events"]}
    newer = {"PostCompleteBuyEvent", "SweepBondingCurveFeeEvent"}  # 2026-10: after this IDL (SOURCES.md)
    pump = {layout.name for layout in LAYOUTS if layout.program == "pump"}
    assert set(discriminators) == (pump - newer) | set(OTHER_EVENTS)
    for name, disc in discriminators.items():
        assert discriminator(name).hex() == disc
    types = {t["name"]: t["type"]["fields"] for t in idl["types"]}

    def idl_type(kind: Any) -> Any:
        if isinstance(kind, str):
            return kind
        assert kind["vec"]["defined"]["name"] == "Shareholder"
        return _borsh.Vec(tuple((f["name"], idl_type(f["type"])) for f in types["Shareholder"]))

    # The May 2026 IDL is a prefix of each layout: the later upgrades only appended (SOURCES.md).
    for layout in LAYOUTS:
        if layout.program != "pump" or layout.name not in types:
            continue
        assert layout.discriminator == discriminators[layout.name]
        expected = tuple((f["name"], idl_type(f["type"])) for f in types[layout.name])
        assert layout.fields[: len(expected)] == expected, layout.name


def test_amm_table_matches_the_idl() -> None:
    idl = json.loads((FIXTURES / "pump_amm_idl_events.json").read_text())
    assert idl["address"] == "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
    discriminators = {event["name"]: bytes(event["discriminator"]).hex() for event in idl["events"]}
    amm = {layout.name: layout for layout in LAYOUTS if layout.program == "pump_amm"}
    # SweepPoolFeeEvent came after this IDL (2026-09-30); every other event is decoded or skipped.
    assert set(discriminators) == (set(amm) - {"SweepPoolFeeEvent"}) | set(_borsh.OTHER_AMM_EVENTS)
    for name, disc in discriminators.items():
        assert discriminator(name).hex() == disc
    for t in idl["types"]:
        expected = tuple((f["name"], f["type"]) for f in t["type"]["fields"])
        assert amm[t["name"]].fields[: len(expected)] == expected, t["name"]


def test_newer_fields_than_the_newest_layout_are_counted_not_lost() -> None:
    """The next program upgrade appends fields: the known ones still decode, exactly, and the
    event says it is longer than the newest known layout."""
    for text, fields, index in zip(captured(), (CREATE, TRADE), (0, 1), strict=True):
        tail = {"CreateEvent": struct.pack("<QBB", 0, 0, 0), "TradeEvent": struct.pack("<QQQ", 0, 0, 0)}
        data = base64.b64decode(text) + tail[LAYOUTS[index].name]
        decoded = decode_event(data)
        assert isinstance(decoded, Decoded) and decoded.drift is None
        longer = decode_event(data + struct.pack("<QQ", 7, 8) + b"\x01")
        assert isinstance(longer, Decoded) and longer.drift == "longer_than_known"
        assert longer.fields == decoded.fields and {k: decoded.fields[k] for k in fields} == fields


def _boundaries(data: bytes, event: str) -> list[tuple[int, list[str]]]:
    """(length, field names present) for an event cut after each whole field, found by probing."""
    out = []
    for length in range(8, len(data) + 1):
        decoded = decode_event(data[:length])
        if isinstance(decoded, Decoded) and decoded.drift is None:
            names = list(decoded.fields)
            if not out or out[-1][1] != names:
                out.append((length, names))
    return out


@pytest.mark.parametrize("index", [0, 1])
def test_older_shorter_layouts_decode_as_far_as_they_go(index: int) -> None:
    data = base64.b64decode(captured()[index])
    layout = LAYOUTS[index]
    names = [name for name, _ in layout.fields]
    full = CREATE if index == 0 else TRADE
    cuts = _boundaries(data, layout.name)
    # One cut per field from the required ones on, each a prefix of the IDL order with exact values.
    assert [len(present) for _, present in cuts] == list(range(layout.required, len(full) + 1))
    for length, present in cuts:
        assert present == names[: len(present)]
        decoded = decode_event(data[:length])
        assert isinstance(decoded, Decoded)
        assert decoded.fields == {k: full[k] for k in present}
    # Fewer fields than the normalization needs: not an event.
    assert decode_event(data[: cuts[0][0] - 1]) == "undecodable"


def test_april_2025_create_layout() -> None:
    """CreateEvent as it was (8 fields): decoded, the later ones absent."""
    data = base64.b64decode(captured()[0])
    cut = 8 + 4 + 14 + 4 + 3 + 4 + 64 + 4 * 32 + 8
    decoded = decode_event(data[:cut])
    assert isinstance(decoded, Decoded)
    assert decoded.fields == {k: CREATE[k] for k in list(CREATE)[:8]}


def test_unknown_and_ignored_discriminators() -> None:
    assert decode_event(b"\x00" * 64) == "unknown_event"
    assert decode_event(b"") == "undecodable"
    assert decode_event(b"\x1b\x72") == "undecodable"
    assert decode_event(discriminator("ExtendAccountEvent") + b"\x00" * 96) is None  # real, not mapped


def test_undecodable_data() -> None:
    trade = bytearray(base64.b64decode(captured()[1]))
    trade[8 + 32 + 16] = 2  # is_buy neither 0 nor 1
    assert decode_event(bytes(trade)) == "undecodable"
    create = bytearray(base64.b64decode(captured()[0]))
    create[12] = 0xFF  # the name is not UTF-8
    assert decode_event(bytes(create)) == "undecodable"
    assert decode_program_data("not base64 at all!") == "undecodable"
    assert decode_program_data("QUJD") == "undecodable"  # 3 bytes: not even a discriminator


def test_hostile_lengths_stop_cleanly() -> None:
    create = bytearray(base64.b64decode(captured()[0]))
    create[8:12] = struct.pack("<I", 0xFFFFFFFF)  # a string longer than the data
    assert decode_event(bytes(create)) == "undecodable"
    trade = base64.b64decode(captured()[1])
    offset = trade.index(b"buy_exact_sol_in") + 16 + 1 + 32  # the shareholders' count
    hostile = trade[:offset] + struct.pack("<I", 0x7FFFFFFF) + trade[offset + 4 :]
    decoded = decode_event(hostile)
    assert isinstance(decoded, Decoded) and decoded.drift == "partial_field"
    # Only what is certain: the fields before the checked tail (from ix_name on).
    assert list(decoded.fields) == list(TRADE)[:21] and decoded.fields["timestamp"] == 1785327618


def test_a_drifted_field_in_a_fixed_run_keeps_every_relied_field() -> None:
    """A CreateEvent whose checked tail (is_mayhem_mode, past the relied-on reserves) is implausible
    sits in the same fixed-size run as the mint and the reserves: those are still certain and kept."""
    create = bytearray(base64.b64decode(captured()[0]))
    mayhem = 8 + 4 + 14 + 4 + 3 + 4 + 64 + 4 * 32 + 8 + 4 * 8 + 32  # after the strings, keys, amounts, program
    assert create[mayhem : mayhem + 2] == b"\x00\x01"
    create[mayhem] = 7
    decoded = decode_event(bytes(create))
    assert isinstance(decoded, Decoded) and decoded.drift == "implausible_bool"
    assert decoded.fields == {k: CREATE[k] for k in list(CREATE)[:10]}
    create[8 + 4 + 14 + 4 + 3 + 4 + 64 + 1 : 8 + 4 + 14 + 4 + 3 + 4 + 64 + 9] = bytes(8)  # the mint: implausible
    assert decode_event(bytes(create)) == "undecodable"  # a relied-on field broken too: no event


def test_shareholders_vector() -> None:
    trade = base64.b64decode(captured()[1])
    offset = trade.index(b"buy_exact_sol_in") + 16 + 1 + 32
    holders = [(os.urandom(32), 2500), (bytes(32), 7500)]
    vec = struct.pack("<I", 2) + b"".join(key + struct.pack("<H", bps) for key, bps in holders)
    decoded = decode_event(trade[:offset] + vec + trade[offset + 4 :])
    assert isinstance(decoded, Decoded)
    assert decoded.fields["shareholders"] == [
        {"address": reference_b58.b58encode(key).decode(), "share_bps": bps} for key, bps in holders
    ]
    assert decoded.fields["real_quote_reserves"] == 2_962_962_962


def test_random_bytes_never_raise() -> None:
    rng = random.Random(12)
    discs = [(bytes.fromhex(layout.discriminator), layout.program) for layout in LAYOUTS]
    for _ in range(3000):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 400)))
        disc, program = rng.choice(discs)
        result = decode_event(disc + body, program)
        assert result in ("undecodable",) or isinstance(result, Decoded)


def test_base58_against_the_reference() -> None:
    rng = random.Random(5)
    keys = [bytes(32), b"\x00\x01" + bytes(30), b"\xff" * 32, b"\x00\x00\x05"]
    keys += [bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 32, 64, 100)))) for _ in range(300)]
    for key in keys:
        text = reference_b58.b58encode(key).decode()
        assert b58encode(key) == text
        assert b58decode(text) == key
    assert b58encode(b"") == "" and b58decode("") == b""
    with pytest.raises(ValueError):
        b58decode("0OIl")


def test_cpi_event_data() -> None:
    data = base64.b64decode(captured()[1])
    assert decode_cpi_data(bytes.fromhex("e445a52e51cb9a1d") + data) == Decoded("TradeEvent", TRADE)
    assert decode_cpi_data(data) is None  # an instruction, not an event CPI
