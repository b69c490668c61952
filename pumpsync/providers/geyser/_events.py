"""One Geyser transaction's events, through the Solana source's decoder (one decoder for both).

The instructions are given in execution order (a top-level instruction, then its inner ones), the
account indices resolved against the message's keys followed by the lookup-table accounts (loaded
writable, then readonly): the event CPIs (``e445a52e51cb9a1d`` + discriminator) carry every event
even where the log was cut.

The decoding itself is ``pumpsync.providers.solana.decode_transaction``: events from the logs
when they are complete, from the instructions' event CPIs when the logs are cut.
"""

from __future__ import annotations

from collections.abc import Mapping

from pumpsync.providers._borsh import b58decode, b58encode
from pumpsync.providers.base import Output
from pumpsync.providers.geyser._proto import Transaction
from pumpsync.providers.solana import PROGRAMS, Filter, Instruction, decode_transaction

# The programs whose instructions the decoder reads, by their raw 32 bytes: only those instructions'
# accounts are turned into base58 (the costliest step per transaction otherwise).
_RAW_PROGRAMS = {b58decode(program): program for program in PROGRAMS}
_KEYS_MEMO: dict[bytes, str] = {}
_KEYS_MEMO_MAX = 16_384  # common accounts (fee recipients, authorities, mints being traded) repeat


def _b58(raw: bytes) -> str:
    text = _KEYS_MEMO.get(raw)
    if text is None:
        if len(_KEYS_MEMO) >= _KEYS_MEMO_MAX:
            _KEYS_MEMO.clear()  # bounded; rebuilt from the next transactions
        text = _KEYS_MEMO[raw] = b58encode(raw)
    return text


def _instructions(tx: Transaction) -> list[Instruction]:
    """The pump.fun and PumpSwap instructions in execution order (a top-level instruction, then its
    inner ones) as (program, accounts, data); the indices resolve against the message's accounts
    followed by the lookup-table ones (``Transaction.keys``); one past them names no account ("")."""
    keys = tx.keys
    count = len(keys)
    inner = {index: group for index, group in tx.inner}
    out: list[Instruction] = []

    def add(program_index: int, accounts: bytes, data: bytes) -> None:
        program = _RAW_PROGRAMS.get(keys[program_index]) if program_index < count else None
        if program is not None:
            out.append(Instruction(program, tuple(_b58(keys[i]) if i < count else "" for i in accounts), data))

    for index, top in enumerate(tx.instructions):
        add(*top)
        for ins in inner.pop(index, ()):
            add(*ins)
    for _, group in sorted(inner.items()):  # groups whose top-level instruction the message lacks
        for ins in group:
            add(*ins)
    return out


def transaction_events(
    tx: Transaction,
    signature: str,
    received_at: int,
    connection: int,
    filters: Mapping[str, Filter],
    out: list[Output],
) -> None:
    """Append the events of one successful transaction (and the decoder's reasons) to ``out``."""
    decode_transaction(tx.logs, _instructions(tx), signature, tx.slot, received_at, connection, False, filters, out)


__all__ = ["transaction_events"]
