"""A typed bot, checked by ``mypy --strict`` in CI: the options and kinds that IDEs complete.

Run it against the simulator (``pumpsync simulate --port 8765`` in another terminal):
``python examples/typed_bot.py``.
"""

from __future__ import annotations

import pumpsync
from pumpsync import Event


def on_launch(event: Event) -> str:
    return f"{event.symbol or '?'} {event.mint} by {event.creator}"


def main(url: str = "ws://127.0.0.1:8766/v1/stream", count: int = 5) -> None:
    client = pumpsync.Client(
        "anaxer",
        api_key="any-key",
        url=url,
        channels={"creations": {}, "trades": {"minSol": 0.1}},
        timeouts=pumpsync.Timeouts(ping_interval=30.0, first_connect=10.0),
        retries=pumpsync.Retries(backoff_max=10.0),
        limits=pumpsync.Limits(queue_size=10_000),
    )
    with client:
        for seen, event in enumerate(client, start=1):
            if event.kind == "new_token":
                print(on_launch(event))
            elif event.kind == "trade" and event.sol_amount is not None:
                print(f"{event.side} {event.sol_amount:.3f} SOL of {event.mint}")
            if seen >= count:
                break


if __name__ == "__main__":
    main()
