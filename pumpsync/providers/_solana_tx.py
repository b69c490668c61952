"""One whole transaction's events: its log lines and its instructions (top level and inner).

Shared by every source that sees transactions, not only their logs (``getTransaction`` gap
recovery, a transaction stream such as Yellowstone gRPC). Sans-I/O. A source turns its own shape
into ``Instruction``s (``instructions_of`` does it for ``getTransaction``'s ``json`` encoding), then
``decode_transaction``:

1. PumpSwap pools are learned from the buy/sell instructions' accounts (pool #0, base mint #3,
   quote mint #4 in ``idl/pump_amm.json``), each checked for being a graduation's pool;
2. the events come from the log lines, as the live stream decodes them; where the log was cut
   (``Log truncated``) or is absent, from the instructions' event CPIs instead (Anchor's
   ``emit_cpi!``: the 8-byte event tag, then the event), which no log limit cuts.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from pumpsync.providers._borsh import EVENT_CPI_TAG, UNDECODABLE, b58decode
from pumpsync.providers._pumpswap_pools import POOLS, PoolBook, is_graduation_pool
from pumpsync.providers._solana_events import LOG_TRUNCATED, PROGRAMS, PUMPSWAP_PROGRAM_ID, Filter, decode_logs
from pumpsync.providers.base import Malformed, Output

# What decode_transaction read the events from.
LOGS = "logs"
INNER = "inner"  # the log was cut or absent: the instructions' event CPIs
TRUNCATED = "truncated"  # the log was cut and no instructions were given: events past the cut are lost


def _ix(name: str) -> bytes:
    """Anchor's instruction discriminator: sha256("global:<name>")[:8]."""
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


# PumpSwap instructions whose accounts begin pool, user, global_config, base_mint, quote_mint (the IDL).
_TRADES_IDL = frozenset({_ix("buy"), _ix("sell"), _ix("buy_exact_quote_in")})
# The 2026-09-30 v2 instructions: their account order is not in an IDL we could read; a pool is
# learned from them only when the graduation-pool check proves the mint (the PDA is of the mint).
_TRADES_V2 = frozenset({_ix("buy_v2"), _ix("sell_v2"), _ix("buy_exact_quote_in_v2")})
_MULTI_HOP = _ix("multi_hop_swap")


class Instruction(NamedTuple):
    """One instruction (top level or inner) as a source found it: its program's and accounts' base58
    keys, and its data bytes."""

    program: str
    accounts: tuple[str, ...]
    data: bytes


def learn_pools(instructions: Sequence[Instruction], pools: PoolBook) -> int:
    """PumpSwap pools -> mints from the trade instructions' accounts; how many trade instructions named one."""
    named = 0
    for ins in instructions:
        if ins.program != PUMPSWAP_PROGRAM_ID or len(ins.accounts) < 5:
            continue
        pool, mint, quote = ins.accounts[0], ins.accounts[3], ins.accounts[4]
        head = ins.data[:8]
        if head not in _TRADES_IDL and not (head in _TRADES_V2 and is_graduation_pool(pool, mint, quote)):
            continue
        named += 1
        pools.learn_accounts(pool, mint, quote)
    return named


def event_lines(instructions: Sequence[Instruction]) -> list[str]:
    """Each event CPI of the pump program or PumpSwap as the log lines it would have been, in order,
    under its program (so that ``decode_logs`` reads them as the live logs: a v3 buy's two parts
    joined, PumpSwap pools mapped, multi-hop marked)."""
    lines: list[str] = []
    for ins in instructions:
        if ins.program not in PROGRAMS:
            continue
        if ins.data[:8] == EVENT_CPI_TAG:
            text = base64.b64encode(ins.data[8:]).decode()
            lines += [f"Program {ins.program} invoke [1]", f"Program data: {text}", f"Program {ins.program} success"]
        elif ins.data[:8] == _MULTI_HOP and ins.program == PUMPSWAP_PROGRAM_ID:
            lines.append("Program log: Instruction: MultiHopSwap")
    return lines


def decode_transaction(
    logs: Sequence[str] | None,
    instructions: Sequence[Instruction],
    signature: str | None,
    slot: int | None,
    received_at: int,
    connection: int,
    backfill: bool,
    filters: Mapping[str, Filter],
    out: list[Output],
    pools: PoolBook | None = None,
) -> str:
    """Append one successful transaction's events (and ``Dropped``/``Malformed`` reasons) to ``out``;
    return where they came from: ``LOGS``, ``INNER`` (the log was cut or absent) or ``TRUNCATED``
    (cut, and no instructions to recover from: ``Malformed("log_truncated")`` is in ``out``)."""
    pools = POOLS if pools is None else pools
    learn_pools(instructions, pools)
    scratch: list[Output] = []
    if logs is not None:
        truncated = decode_logs(list(logs), signature, slot, received_at, connection, backfill, filters, scratch, pools)
        if not truncated:
            out += scratch
            return LOGS
    lines = event_lines(instructions)
    if not any(line.startswith("Program data: ") for line in lines):
        # Nothing to recover from (a node that leaves inner instructions out): what the log had, and
        # the cut counted.
        out += scratch if logs is not None else [Malformed(LOG_TRUNCATED)]
        return TRUNCATED
    decode_logs(lines, signature, slot, received_at, connection, backfill, filters, out, pools)
    return INNER


# ---------------------------------------------------------------- getTransaction (encoding "json")


def instructions_of(tx: Mapping[str, Any], out: list[Output]) -> list[Instruction] | None:
    """A ``getTransaction`` result's pump and PumpSwap instructions in execution order (each top-level
    one, then its inner ones); ``None`` when it has no message to read them from. Values typed before
    use: an index past the keys gives an empty key; data that is not base58, ``Malformed("undecodable")``
    in ``out`` and no instruction, never an error."""
    transaction = tx.get("transaction")
    message = transaction.get("message") if isinstance(transaction, dict) else None
    meta = tx.get("meta")
    if not isinstance(message, dict) or not isinstance(meta, dict):
        return None
    keys = _account_keys(message, meta)
    inner: dict[int, list[Any]] = {}
    groups = meta.get("innerInstructions")
    for group in groups if isinstance(groups, list) else ():
        index = group.get("index") if isinstance(group, dict) else None
        items = group.get("instructions") if isinstance(group, dict) else None
        if type(index) is int and isinstance(items, list):
            inner.setdefault(index, []).extend(items)
    top = message.get("instructions")
    top = top if isinstance(top, list) else []
    found: list[Instruction] = []
    for i in range(max(len(top), max(inner, default=-1) + 1)):
        for item in ([top[i]] if i < len(top) else []) + inner.get(i, []):
            ins = _instruction(item, keys) if isinstance(item, dict) else None
            if isinstance(ins, Instruction):
                found.append(ins)
            elif ins is not None:
                out.append(ins)
    return found


def _instruction(item: Mapping[str, Any], keys: list[str]) -> Instruction | Malformed | None:
    program = item.get("programId")  # jsonParsed encoding
    if not isinstance(program, str):
        index = item.get("programIdIndex")  # json encoding
        program = keys[index] if type(index) is int and 0 <= index < len(keys) else None
    if program is None or program not in PROGRAMS:
        return None  # only the two programs' instructions matter here
    data = item.get("data")
    try:
        raw = b58decode(data) if isinstance(data, str) else b""
    except ValueError:
        return Malformed(UNDECODABLE)
    accounts: list[str] = []
    for account in item.get("accounts") or ():
        if type(account) is int:
            accounts.append(keys[account] if 0 <= account < len(keys) else "")
        elif isinstance(account, str):  # jsonParsed: the keys themselves
            accounts.append(account)
    return Instruction(program, tuple(accounts), raw)


def _account_keys(message: Mapping[str, Any], meta: Mapping[str, Any]) -> list[str]:
    """The transaction's accounts in index order: the message's, then those loaded from lookup tables."""
    keys: list[str] = []
    listed = message.get("accountKeys")
    for key in listed if isinstance(listed, list) else ():  # typed before use: anything else has no keys
        pubkey = key.get("pubkey") if isinstance(key, dict) else key
        keys.append(pubkey if isinstance(pubkey, str) else "")
    loaded = meta.get("loadedAddresses")
    if isinstance(loaded, dict):
        for part in ("writable", "readonly"):
            addresses = loaded.get(part)
            keys.extend(k for k in (addresses if isinstance(addresses, list) else ()) if isinstance(k, str))
    return keys


__all__ = [
    "INNER",
    "LOGS",
    "TRUNCATED",
    "Instruction",
    "decode_transaction",
    "event_lines",
    "instructions_of",
    "learn_pools",
]
