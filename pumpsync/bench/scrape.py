"""What "metrics on" means for the product: its metrics server runs and is scraped once a second.

The scraper is a thread of the measured process, so its own cost (an HTTP GET with urllib)
is charged to the product too: a pessimistic stand-in for a Prometheus server that would
scrape every 15 s from another process.
"""

from __future__ import annotations

import threading
import urllib.request
from typing import Any

from pumpsync.client import Client

SCRAPE_INTERVAL = 1.0


class Scraper:
    def __init__(self, server: Any) -> None:
        self.scrapes = 0
        self.failures = 0
        self.last_size = 0
        self._server = server
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if server is not None:
            self._thread = threading.Thread(target=self._run, name="bench-scraper", daemon=True)
            self._thread.start()

    @classmethod
    def start(cls, client: Client) -> Scraper:
        try:
            from pumpsync.metrics import start_metrics_server
        except ImportError:  # built by another part of the project; the result says "off"
            return cls(None)
        return cls(start_metrics_server(client, "127.0.0.1:0"))

    def _run(self) -> None:
        url = f"{self._server.url}/metrics"
        while not self._stop.wait(SCRAPE_INTERVAL):
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    self.last_size = len(response.read())
                self.scrapes += 1
            except OSError:
                self.failures += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        if self._server is not None:
            self._server.close()

    def describe(self) -> dict[str, Any]:
        if self._server is None:
            return {"on": False}
        return {"on": True, "scrapes": self.scrapes, "failures": self.failures, "bytes": self.last_size}
