"""PumpSwap pool -> the token it trades: PumpSwap's Buy/SellEvent name the pool, not the mint.

Learned from (strongest first) the pump program's migration event (it names its graduation's pool),
PumpSwap's ``CreatePoolEvent`` (index, creator, base mint, pool), and the buy/sell instruction's own
accounts (pool #0, base mint #3, quote mint #4: ``idl/pump_amm.json``). Whether a pool is the one a
pump.fun graduation created is checked, not assumed: its address must be the PDA of index 0 whose
creator is the pump program's pool authority for that mint (``_pda.graduation_pool``); anyone can
create another pool for the same mint, and its trades are not the token's graduation market.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from typing import NamedTuple

from pumpsync.providers._pda import graduation_pool, pool_authority

WSOL_MINT = "So11111111111111111111111111111111111111112"

# How a pool was learned, and what else happened to the book (bounded: metric labels).
FROM_MIGRATION = "migration"
FROM_CREATE_POOL = "create_pool"
FROM_ACCOUNTS = "instruction_accounts"
LOOKALIKE = "lookalike"  # a pool for the mint that no graduation created (index > 0, another creator)
EVICTED = "evicted"
POOL_COUNTS = (FROM_MIGRATION, FROM_CREATE_POOL, FROM_ACCOUNTS, LOOKALIKE, EVICTED)


class Pool(NamedTuple):
    mint: str
    graduated: bool  # created by a pump.fun graduation (index 0, the pump program's pool authority)
    quote: str | None  # the pool's quote mint, where known (wrapped SOL, USDC, ...)


def is_graduation_pool(pool: str, mint: str, quote: str) -> bool:
    """Whether ``pool`` is the address a pump.fun graduation of ``mint`` (quoted in ``quote``) creates."""
    try:
        return graduation_pool(mint, quote) == pool
    except ValueError:  # not base58: no address at all
        return False


class PoolBook:
    """pool -> ``Pool``. Bounded (least recently used out, counted); thread-safe (the live dialect,
    gap recovery and other sources share it); no call out under the lock; counts by how learned."""

    def __init__(self, limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._pools: OrderedDict[str, Pool] = OrderedDict()
        self._limit = limit
        self._counts: Counter[str] = Counter()

    def learn(self, pool: str, mint: str, graduated: bool, quote: str | None = None, how: str = FROM_MIGRATION) -> None:
        """``graduated`` only ever turns on: a migration event is the pump program's own word."""
        with self._lock:
            known = self._pools.pop(pool, None)
            if known is not None:
                graduated = graduated or known.graduated
                quote = quote or known.quote
            else:
                self._counts[how] += 1
                if not graduated:
                    self._counts[LOOKALIKE] += 1
            self._pools[pool] = Pool(mint, graduated, quote)
            while len(self._pools) > self._limit:
                self._pools.popitem(last=False)
                self._counts[EVICTED] += 1

    def learn_created(self, pool: str, mint: str, quote: str, index: int, creator: str) -> None:
        """From a ``CreatePoolEvent``: a graduation's pool has index 0 and the pool authority as creator."""
        graduated = index == 0 and creator == _authority(mint) and is_graduation_pool(pool, mint, quote)
        self.learn(pool, mint, graduated, quote, FROM_CREATE_POOL)

    def learn_accounts(self, pool: str, mint: str, quote: str) -> bool:
        """From a buy/sell instruction's accounts, once per pool (the check costs two PDA searches);
        whether the pool is known now."""
        with self._lock:
            if pool in self._pools:
                return True
        self.learn(pool, mint, is_graduation_pool(pool, mint, quote), quote, FROM_ACCOUNTS)
        return True

    def get(self, pool: str) -> Pool | None:
        with self._lock:
            found = self._pools.get(pool)
            if found is not None:
                self._pools.move_to_end(pool)
            return found

    def counts(self) -> dict[str, int]:
        """Pools learned by how, look-alikes, evictions: every label at 0 from the start."""
        with self._lock:
            return {**dict.fromkeys(POOL_COUNTS, 0), **self._counts}

    def __len__(self) -> int:
        with self._lock:
            return len(self._pools)


def _authority(mint: str) -> str | None:
    try:
        return pool_authority(mint)
    except ValueError:
        return None


POOLS = PoolBook()

__all__ = ["POOLS", "POOL_COUNTS", "WSOL_MINT", "Pool", "PoolBook", "is_graduation_pool"]
