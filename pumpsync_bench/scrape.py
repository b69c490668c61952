"""What "metrics on" means for the product: its metrics server runs and is scraped once a second.

The scrape comes from the orchestrator's process, as a Prometheus server's would come from its
own: the measured process pays for serving each scrape (collecting, rendering, the HTTP
exchange), not for being its own HTTP client. Once a second is still pessimistic; Prometheus
scrapes every 15 s by default.
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from typing import Any

SCRAPE_INTERVAL = 1.0


def free_addr() -> str:
    """A loopback ``host:port`` that nothing listens on right now, for the worker's metrics server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


class Scraper:
    """Scrapes ``http://ADDR/metrics`` every second from a thread of this (the orchestrator's) process."""

    def __init__(self, addr: str) -> None:
        self.scrapes = 0
        self.failures = 0
        self.last_size = 0
        self._url = f"http://{addr}/metrics"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-scraper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SCRAPE_INTERVAL):
            try:
                with urllib.request.urlopen(self._url, timeout=5) as response:
                    self.last_size = len(response.read())
                self.scrapes += 1
            except OSError:
                self.failures += 1

    def close(self) -> dict[str, Any]:
        """Stop; what was scraped (for the run's result)."""
        self._stop.set()
        self._thread.join(10.0)
        return {"on": True, "scrapes": self.scrapes, "failures": self.failures, "bytes": self.last_size}
