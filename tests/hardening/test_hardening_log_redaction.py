"""Keys in no log record of the process (issue 22, item 14), whichever logger makes it.

A user's script configures logging its own way (``logging.basicConfig(level=DEBUG)``: a handler
at the root, not ours) and talks, through pumpsync, to a server on 127.0.0.1 with keys in the URL
path, the query and a header, and to Redis with a password holding ``/``. Dependencies log there
at DEBUG (urllib3 prints the request line, path and query included). Nothing of any key may be in
the log file, the exceptions, the reprs, the metrics or the CLI's output.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from hardening_support import free_port

PATH_KEY = "pathKEY0a1b2c3d4e5f6g7h8"
QUERY_KEY = "queryKEYz9y8x7w6v5"
HEADER_KEY = "headerKEYq1w2e3r4t5"
REDIS_PASSWORD = "redis/pass/WORD77"
SECRETS = (PATH_KEY, QUERY_KEY, HEADER_KEY, REDIS_PASSWORD, "pass/WORD77", "WORD77")

SCRIPT = """
import http.server, json, logging, sys, threading
log_file, out_file, port, path_key, query_key, header_key, redis_password, dead = sys.argv[1:]
logging.basicConfig(level=logging.DEBUG, filename=log_file, format="%(name)s %(levelname)s %(message)s")

class Rpc(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Rpc)
threading.Thread(target=server.serve_forever, daemon=True).start()

import pumpsync
from prometheus_client import generate_latest
from pumpsync.metrics import make_registry
from pumpsync.providers.redis import RedisReader
from pumpsync.providers.solana import SPEC

out = []
url = f"http://127.0.0.1:{port}/{path_key}/?api-key={query_key}"
for auth, key in (("query", None), ("header", header_key)):
    client = pumpsync.Client("solana", url=url.replace("http", "ws"), rest_url=url, api_key=key, auth=auth)
    history = SPEC.history(client.config)
    out.append(repr(history.call("getSignaturesForAddress", ["x"], threading.Event())))  # urllib3 logs it
    out += [repr(client), repr(client.config), str(client.stats())]
    out.append(generate_latest(make_registry(client)).decode())
    history.close()
# Every dependency's logger, with a record that names the secrets the way each library would.
for name in ("urllib3.connectionpool", "requests", "websocket", "redis.connection", "websockets.client",
             "grpc._channel", "pumpsync"):
    logger = logging.getLogger(name)
    logger.debug("connect %s", url)
    logger.debug("headers: {'Authorization': 'Bearer %s'}", header_key)
    logger.debug("GET /%s/ HTTP/1.1", path_key)
    try:
        raise ConnectionError(f"failed: {url} redis://:{redis_password}@127.0.0.1:{dead}/0")
    except ConnectionError:
        logger.exception("with a traceback")
# Redis: a password with "/" (percent-encoded in the URL, as it must be), refused by a dead port.
from urllib.parse import quote
reader = RedisReader(f"redis://:{quote(redis_password, safe='')}@127.0.0.1:{dead}/0", max_retries=1,
                     backoff_initial=0.01, backoff_max=0.02, connect_timeout=0.5)
out += [repr(reader), repr(reader.options)]
with reader:
    try:
        reader.get(timeout=20)
    except Exception as exc:
        out.append(f"{type(exc).__name__}: {exc}")
open(out_file, "w").write("\\n".join(out))
"""


def leaked(text: str) -> list[str]:
    from urllib.parse import quote

    return [s for s in SECRETS if s in text or quote(s, safe="") in text]


def test_a_users_debug_logging_sees_no_key_from_any_library(tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(SCRIPT)
    log_file, out_file = tmp_path / "debug.log", tmp_path / "out.txt"
    args = [str(log_file), str(out_file), str(free_port()), PATH_KEY, QUERY_KEY, HEADER_KEY, REDIS_PASSWORD]
    run = subprocess.run(
        [sys.executable, str(script), *args, str(free_port())], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    log = log_file.read_text()
    out = out_file.read_text()
    assert "urllib3.connectionpool DEBUG" in log and '"POST /***/?api-key=*** HTTP/1.1" 200' in log, log[-2000:]
    assert "Traceback" in log  # the exceptions' tracebacks were rendered, scrubbed
    assert "pumpsync_" in out and "ConnectionLost" in out
    assert leaked(log) == [], textwrap.shorten(log, 3000)
    assert leaked(out) == [], out
    assert leaked(run.stdout + run.stderr) == []


def test_the_sink_error_and_stream_vv_show_no_password_or_path_key(tmp_path: Path) -> None:
    """Before: ``--sink redis://:pa/ss@...`` printed the password in full (``--check`` and at start)."""
    dead = free_port()
    for sink in (f"redis://:{REDIS_PASSWORD}@127.0.0.1:{dead}/0", f"rediss-x://:{REDIS_PASSWORD}@127.0.0.1:{dead}/0"):
        run = subprocess.run(
            [sys.executable, "-m", "pumpsync", "daemon", "--check", "--demo", "--sink", sink],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode != 0 and "sink" in run.stderr, run.stderr
        assert leaked(run.stdout + run.stderr) == [], run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "pumpsync", "stream", "--provider", "solana", "-vv", "--duration", "3",
         "--url", f"ws://127.0.0.1:{dead}/{PATH_KEY}/?api-key={QUERY_KEY}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "127.0.0.1" in run.stderr, run.stderr
    assert leaked(run.stdout + run.stderr) == [], run.stderr


FACTORY_KEY = "factoryKEY9z8y7x6w5v4"

FACTORY_SCRIPT = """
import logging, socket, sys, threading
log_file, key, port = sys.argv[1:]
logging.basicConfig(level=logging.DEBUG, filename=log_file, format="%(name)s %(levelname)s %(message)s")
import pumpsync, websocket

# The user's own record factory, installed after pumpsync's, that does not chain it.
logging.setLogRecordFactory(lambda *args, **kwargs: logging.LogRecord(*args, **kwargs))
websocket.enableTrace(True)  # websocket-client prints the request line, the query key in it, at DEBUG

listener = socket.create_server(("127.0.0.1", int(port)))


def refuse() -> None:  # a server that reads the upgrade request and refuses it
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 500 Oops\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n")


threading.Thread(target=refuse, daemon=True).start()
url = f"ws://127.0.0.1:{port}/v1/stream"
client = pumpsync.Client("openpump", url=url, api_key=key, max_retries=2, backoff_initial=0.01, backoff_max=0.02)
with client:
    try:
        while True:
            client.get(timeout=30)
    except pumpsync.PumpsyncError as exc:
        logging.getLogger("user").error("the client failed: %s", exc)
# Each dependency's logger named in the standards, as each would write the URL (a child logger:
# its parent's filters never see it), and a traceback.
for name in ("urllib3.connectionpool", "websocket", "grpc._channel", "redis.connection", "pumpsync.connection"):
    logger = logging.getLogger(name)
    logger.debug("connect %s?api_key=%s", url, key)
    try:
        raise ConnectionError(f"failed: {url}?api_key={key}")
    except ConnectionError:
        logger.exception("with a traceback")
"""


def test_a_users_record_factory_that_does_not_chain_ours_leaks_no_key(tmp_path: Path) -> None:
    """The finding: redaction was pumpsync's record factory, so a user's ``setLogRecordFactory``
    that does not chain it turned it off. ``Logger.makeRecord`` scrubs too now."""
    script, log_file = tmp_path / "user.py", tmp_path / "debug.log"
    script.write_text(FACTORY_SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), str(log_file), FACTORY_KEY, str(free_port())],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    log = log_file.read_text()
    assert "GET /v1/stream?api_key=*** HTTP/1.1" in log  # websocket-client's trace, at DEBUG
    assert "user ERROR the client failed" in log and "Traceback" in log
    assert "redis.connection DEBUG connect" in log
    assert FACTORY_KEY not in log, textwrap.shorten(log, 3000)
    assert FACTORY_KEY not in run.stdout + run.stderr, run.stderr[-3000:]
