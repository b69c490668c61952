"""Market events as pump.fun transactions: log lines (as ``logsSubscribe`` streams them) and the
``getTransaction`` answer (encoding ``json``), both rendered from one call tree.

A transaction is kept as a small ``Recipe`` and rendered on demand: rendering is a pure
function of the recipe (per-transaction randomness is seeded by the signature), so the
history can hold many transactions cheaply and every rendering equals what was streamed.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pumpsync.simulator._solana_calls import (
    Call,
    Recipe,
    calls_of,
    compute_limit,
)
from pumpsync.simulator._solana_encode import (
    CPI_EVENT_TAG,
    b58decode,
    b58encode,
    derived_key,
    derived_signature,
)
from pumpsync.simulator._solana_values import (
    AMM_EVENT_AUTHORITY,
    EVENT_AUTHORITY,
    LOG_LIMIT,
    MIGRATION_AUTHORITY,
    PROGRAM_IDS,
    PUMP,
)

# -- rendering ------------------------------------------------------------------------------


@dataclass
class Rendered:
    logs: list[str]
    keys: list[str]  # account keys, fee payer first
    instructions: list[dict[str, Any]]
    inner: list[dict[str, Any]]
    units: int


class _Renderer:
    def __init__(self, payer: str) -> None:
        self.logs: list[str] = []
        self.keys: list[str] = [payer]
        self._index = {payer: 0}
        self.inner: list[dict[str, Any]] = []

    def key(self, address: str) -> int:
        if address not in self._index:
            self._index[address] = len(self.keys)
            self.keys.append(address)
        return self._index[address]

    def compiled(self, call: Call, depth: int | None) -> dict[str, Any]:
        return {
            "programIdIndex": self.key(call.program),
            "accounts": [self.key(a) for a in call.accounts],
            "data": b58encode(call.data),
            "stackHeight": depth,
        }

    def run(self, call: Call, depth: int, budget: int) -> int:
        """Log ``call`` at ``depth``; returns the compute units it consumed."""
        program = call.program
        self.logs.append(f"Program {program} invoke [{depth}]")
        used = call.units or 0
        for item in call.body:
            if isinstance(item, str):
                self.logs.append(item)
            elif isinstance(item, Call):
                self.inner.append(self.compiled(item, depth + 1))
                used += self.run(item, depth + 1, budget - used)
            else:  # an event: the log line, then the same bytes through the self-CPI
                self.logs.append(f"Program data: {base64.b64encode(item).decode()}")
                # emit_cpi!: the emitting program invokes itself with the event
                authority = EVENT_AUTHORITY if program == PUMP else AMM_EVENT_AUTHORITY
                cpi = Call(program, units=2143, accounts=(authority,), data=CPI_EVENT_TAG + item)
                self.inner.append(self.compiled(cpi, depth + 1))
                used += self.run(cpi, depth + 1, budget - used)
        if call.units is not None:
            self.logs.append(f"Program {program} consumed {used} of {budget} compute units")
        if call.ret is not None:
            self.logs.append(f"Program return: {program} {call.ret}")
        self.logs.append(f"Program {program} failed: {call.fail}" if call.fail else f"Program {program} success")
        return used


def payer(recipe: Recipe) -> str:
    if recipe.launch is not None:
        return recipe.launch.token.creator
    if recipe.trade is not None:
        return recipe.trade.trader
    return MIGRATION_AUTHORITY


def render(recipe: Recipe) -> Rendered:
    rng = random.Random(recipe.signature)
    r = _Renderer(payer(recipe))
    instructions: list[dict[str, Any]] = []
    inner: list[dict[str, Any]] = []
    budget, total = compute_limit(recipe.signature), 0
    for index, call in enumerate(calls_of(recipe, rng)):
        instructions.append(r.compiled(call, None))
        r.inner = []
        used = r.run(call, 1, budget - total)
        total += used
        if r.inner:
            inner.append({"index": index, "instructions": r.inner})
        if call.fail:
            break
    logs = r.logs
    if recipe.truncated:
        logs = _truncate(logs)
    return Rendered(logs, r.keys, instructions, inner, total)


def _truncate(logs: list[str]) -> list[str]:
    kept, size = [], 0
    for line in logs:
        size += len(line)
        if size > LOG_LIMIT:
            break
        kept.append(line)
    return [*kept, "Log truncated"]


def event_payloads(rendered: Rendered) -> Iterator[bytes]:
    """The events a transaction's inner instructions carry (tag stripped), in order."""
    for group in rendered.inner:
        for ix in group["instructions"]:
            data = b58decode(ix["data"])
            if data.startswith(CPI_EVENT_TAG):
                yield data[len(CPI_EVENT_TAG) :]


def value_text(recipe: Recipe, rendered: Rendered) -> str:
    """The notification's ``value`` (and the history item): signature, err, logs."""
    return json.dumps({"signature": recipe.signature, "err": recipe.err, "logs": rendered.logs}, separators=(",", ":"))


def transaction_result(recipe: Recipe, rendered: Rendered) -> dict[str, Any]:
    """``getTransaction`` ``result`` with ``encoding: json``."""
    keys = rendered.keys
    programs = sum(1 for k in keys if k in PROGRAM_IDS)
    fee = 5000 + (recipe.slot % 97) * 1000
    pre = [0] * len(keys)
    pre[0] = 5_000_000_000 + (recipe.slot % 1000) * 1_000_000
    post = list(pre)
    post[0] -= fee
    meta: dict[str, Any] = {
        "err": recipe.err,
        "status": {"Ok": None} if recipe.err is None else {"Err": recipe.err},
        "fee": fee,
        "preBalances": pre,
        "postBalances": post,
        "innerInstructions": rendered.inner,
        "logMessages": rendered.logs,
        "preTokenBalances": [],
        "postTokenBalances": [],
        "rewards": [],
        "loadedAddresses": {"writable": [], "readonly": []},
        "computeUnitsConsumed": rendered.units,
        "costUnits": rendered.units + 1_440 + 300 * len(keys),
    }
    message = {
        "header": {"numRequiredSignatures": 1, "numReadonlySignedAccounts": 0, "numReadonlyUnsignedAccounts": programs},
        "accountKeys": keys,
        "recentBlockhash": derived_key("blockhash", str(recipe.slot)),
        "instructions": rendered.instructions,
        "addressTableLookups": [],
    }
    return {
        "slot": recipe.slot,
        "blockTime": recipe.block_time,
        "version": 0,
        "meta": meta,
        "transaction": {"signatures": [recipe.signature], "message": message},
        "transactionIndex": sum(recipe.signature.encode()) % 1500,
    }


def fault_signature(label: str, n: int) -> str:
    return derived_signature("sim-solana", label, str(n))
