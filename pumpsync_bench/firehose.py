"""A WebSocket server that measures clients, not itself: pre-encoded frames in large writes.

The simulator builds each frame when it sends it (a JSON template, a serial, a send stamp, the
``websockets`` framing): its process tops out near the rate the fastest clients read, so every fast
client would wait on it. Here the frames are built before the clock starts, as complete WebSocket
frames in buffers of about a mebibyte, and a blast is a loop of ``sendall`` calls. What the frames
hold is the simulator's own output: :func:`capture` connects to the simulator as a client, sends the
provider's hello, and keeps what the simulator sent for one pool of blast trades (its encoders; the
clients' decoders share no code with them). Per frame only the signature's last 8 characters
change (a counter, as in :mod:`pumpsync.simulator.blast`), so every event is distinct.

The server side of the WebSocket protocol is the minimum every client accepts (RFC 6455): the
upgrade with ``Sec-WebSocket-Accept``, unmasked frames out; masked frames in, a ping answered by a
pong, a close by a close; no extension is negotiated. Each provider's hello is answered with the
simulator's captured answer (a JSON-RPC ``id`` echoed).

A blast reports its wall time and the sending thread's CPU time: ``frames / cpu_s`` is the rate the
server could send at if the client never made it wait, the figure a client's rate is judged against.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pumpsync.simulator._ids import CounterSuffix

CHUNK = 1 << 20  # bytes per sendall: large writes, few system calls
MAX_REQUEST = 16_384  # the upgrade request's bytes, at most
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, 1.3
_QUIET = 0.3  # seconds without a frame that end a capture phase
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key.strip() + _GUID).digest())


@dataclass(frozen=True)
class Template:
    """One captured blast frame, cut around the 8 characters that make it unique."""

    head: bytes
    tail: bytes


@dataclass
class Dialect:
    """What the simulator sent one provider's client: on connect, after each hello, and per trade."""

    provider: str
    preamble: list[bytes]  # frames sent on connect, before the client said anything
    answers: list[bytes]  # frames sent after the client's hello
    templates: list[Template]  # the blast's frames for one pool of trades, in order
    hello_expected: bool  # a client is streaming only once it has sent a text frame
    replies: dict[bytes, bytes] = field(default_factory=dict)  # an application ping -> the simulator's answer

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "preamble": len(self.preamble), "answers": len(self.answers),
                "templates": len(self.templates)}  # fmt: skip


# ---------------------------------------------------------------- capture from the simulator


def capture(sim: Any, feed: Any, pool: list[Any], hello_expected: bool, pings: tuple[str, ...] = ()) -> Dialect:
    """Connect to ``sim`` as a client of ``feed``, send its hello, blast one pool of trades, keep
    what came back. ``pool``: the simulator's blast trades (their signatures locate the serial).
    ``pings``: application-level pings a client may send; the simulator's answers are kept too."""
    import websocket

    ws = websocket.create_connection(feed.ws_url(), timeout=5.0)
    try:
        preamble = _drain(ws)
        for text in feed.hello():
            ws.send(text)
        sim.wait_for_connections(feed.provider, 1, subscribed=True, timeout=10.0)
        answers = _drain(ws)
        replies = {}
        for ping in pings:
            ws.send(ping)
            replies[ping.encode()] = b"".join(frame(r) for r in _drain(ws))
        sent = sim.blast(len(pool), feed.provider, rate=None, stamp=True, timeout=30.0)
        ws.settimeout(10.0)
        prefixes = [t.signature[:-8].encode() for t in pool]
        templates: list[Template] = []
        while len(templates) < sent:
            data = ws.recv()
            data = data.encode() if isinstance(data, str) else data
            cut = min((data.find(p) + len(p) for p in prefixes if p in data), default=-1)
            if cut < 0:  # not a blast frame (a heartbeat)
                continue
            templates.append(Template(data[:cut], data[cut + 8 :]))
    finally:
        ws.close()
    if not templates:
        raise RuntimeError(f"the simulator sent no {feed.provider} blast frames")
    return Dialect(feed.provider, [frame(p) for p in preamble], [frame(a) for a in answers], templates, hello_expected,
                   replies)  # fmt: skip


def _drain(ws: Any) -> list[bytes]:
    out: list[bytes] = []
    ws.settimeout(_QUIET)
    while True:
        try:
            data = ws.recv()
        except Exception:  # the timeout: nothing more for now
            return out
        out.append(data.encode() if isinstance(data, str) else data)


# ---------------------------------------------------------------- the frames of one blast


@dataclass
class Blast:
    """``count`` complete frames in chunks of about :data:`CHUNK` bytes, built before the clock starts."""

    frames: int
    chunks: list[bytes]

    @property
    def bytes(self) -> int:
        return sum(len(c) for c in self.chunks)


def build(dialect: Dialect, count: int, first: int = 0) -> Blast:
    suffix = CounterSuffix()
    heads = []
    for t in dialect.templates:  # the WebSocket header (a fixed length per template) and the head before the serial
        size = len(t.head) + 8 + len(t.tail)
        heads.append((frame(bytes(size))[:-size] + t.head, t.tail))
    pool = len(heads)
    chunks: list[bytes] = []
    parts: list[bytes] = []
    size = 0
    for n in range(count):
        head, tail = heads[n % pool]
        piece = head + suffix.render(first + n).encode() + tail
        parts.append(piece)
        size += len(piece)
        if size >= CHUNK:
            chunks.append(b"".join(parts))
            parts, size = [], 0
    if parts:
        chunks.append(b"".join(parts))
    return Blast(count, chunks)


# ---------------------------------------------------------------- the server


@dataclass(eq=False)
class Peer:
    sock: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)  # whole frames only: one writer at a time
    streaming: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)

    def send(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)


class Firehose:
    """One listening socket per dialect on 127.0.0.1; a thread per connection reads its frames."""

    def __init__(self, dialects: dict[str, Dialect]) -> None:
        self.dialects = dialects
        self._listeners: dict[str, socket.socket] = {}
        self._peers: dict[str, list[Peer]] = {p: [] for p in dialects}
        self._blasts: dict[tuple[str, int], Blast] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        for provider in dialects:
            listener = socket.create_server(("127.0.0.1", 0))
            self._listeners[provider] = listener
            threading.Thread(target=self._accept, args=(provider, listener), name=f"firehose-{provider}",
                             daemon=True).start()  # fmt: skip

    def url(self, provider: str) -> str:
        port = self._listeners[provider].getsockname()[1]
        return f"ws://127.0.0.1:{port}/firehose/{provider}"

    def close(self) -> None:
        self._stop.set()
        for listener in self._listeners.values():
            listener.close()
        with self._cond:
            peers = [p for ps in self._peers.values() for p in ps]
        for peer in peers:
            _close(peer.sock)

    # -- commands (the orchestrator's thread) ----------------------------------------------------

    def prepare(self, provider: str, count: int) -> Blast:
        """The frames of a ``count`` blast (built once per size, the same bytes for every client)."""
        key = (provider, count)
        if key not in self._blasts:
            self._blasts.clear()  # one size at a time: a Solana blast is ~100 MB
            self._blasts[key] = build(self.dialects[provider], count)
        return self._blasts[key]

    def wait_idle(self, timeout: float) -> None:
        self._wait(lambda: not any(p for ps in self._peers.values() for p in ps), timeout, "no client connected")

    def wait_streaming(self, provider: str, n: int, timeout: float) -> None:
        self._wait(lambda: sum(p.streaming.is_set() for p in self._peers[provider]) >= n, timeout,
                   f"{n} streaming {provider} client(s)")  # fmt: skip

    def _wait(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"firehose: waited {timeout:g} s for {what}")
                self._cond.wait(left)

    def blast(self, provider: str, count: int, timeout: float) -> dict[str, Any]:
        """Send the prepared frames to every streaming client of ``provider``, one after the other."""
        blast = self.prepare(provider, count)
        with self._cond:
            peers = [p for p in self._peers[provider] if p.streaming.is_set() and not p.closed.is_set()]
        if not peers:
            raise RuntimeError(f"firehose: no streaming {provider} client")
        frames = sent = 0
        wall, cpu = time.perf_counter(), time.thread_time()
        deadline = time.monotonic() + timeout
        for peer in peers:
            peer.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                for chunk in blast.chunks:
                    peer.send(chunk)
                    sent += len(chunk)
                frames += blast.frames
            except OSError:
                pass  # the client went away or stalled past the deadline: counted by what was sent
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        return {"frames": frames, "bytes": sent, "wall_s": wall, "cpu_s": cpu,
                "send_rate": frames / cpu if cpu > 0 else None}  # fmt: skip

    # -- per connection ---------------------------------------------------------------------------

    def _accept(self, provider: str, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(provider, sock), name=f"firehose-{provider}-peer",
                             daemon=True).start()  # fmt: skip

    def _serve(self, provider: str, sock: socket.socket) -> None:
        dialect = self.dialects[provider]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = Peer(sock)
        try:
            buf = _upgrade(sock)
            if buf is None:
                return
            with self._cond:
                self._peers[provider].append(peer)
            if dialect.preamble:
                peer.send(b"".join(dialect.preamble))
            if not dialect.hello_expected:
                self._streaming(peer)
            self._read(dialect, peer, buf)
        except OSError:
            pass
        finally:
            peer.closed.set()
            _close(sock)
            with self._cond:
                if peer in self._peers[provider]:
                    self._peers[provider].remove(peer)
                self._cond.notify_all()

    def _streaming(self, peer: Peer) -> None:
        with self._cond:
            peer.streaming.set()
            self._cond.notify_all()

    def _read(self, dialect: Dialect, peer: Peer, buf: bytes) -> None:
        """Client frames until the connection ends: hellos answered, pings ponged, a close echoed."""
        sock = peer.sock
        while True:
            parsed = _client_frame(buf)
            if parsed is None:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
                if len(buf) > 1 << 20:
                    return  # no client of ours says this much
                continue
            opcode, payload, buf = parsed
            if opcode == OP_TEXT and payload in dialect.replies:  # an application ping
                if dialect.replies[payload]:
                    peer.send(dialect.replies[payload])
            elif opcode == OP_TEXT:
                answers = _answers(dialect.answers, payload)
                if answers:
                    peer.send(answers)
                self._streaming(peer)
            elif opcode == OP_PING:
                peer.send(frame(payload, OP_PONG))
            elif opcode == OP_CLOSE:
                try:
                    peer.send(frame(payload[:2], OP_CLOSE))
                except OSError:
                    pass
                return


def _answers(answers: list[bytes], hello: bytes) -> bytes:
    """The captured answers, a JSON-RPC request's ``id`` echoed in each answer that has one."""
    if not answers:
        return b""
    try:
        request = json.loads(hello)
    except ValueError:
        request = None
    rid = request.get("id") if isinstance(request, dict) else None
    if rid is None:
        return b"".join(answers)
    out = []
    for raw in answers:
        parsed = _client_frame(raw, masked=False)
        assert parsed is not None
        try:
            answer = json.loads(parsed[1])
        except ValueError:
            out.append(raw)
            continue
        if isinstance(answer, dict) and "id" in answer:
            answer["id"] = rid
            out.append(frame(json.dumps(answer, separators=(",", ":")).encode()))
        else:
            out.append(raw)
    return b"".join(out)


def _upgrade(sock: socket.socket) -> bytes | None:
    """Read the HTTP upgrade request and accept it; the bytes after it, or None (refused)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(4096)
        if not data or len(buf) > MAX_REQUEST:
            return None
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    key = headers.get(b"sec-websocket-key")
    if key is None or b"websocket" not in headers.get(b"upgrade", b"").lower():
        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return None
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n")  # fmt: skip
    return rest


def _client_frame(buf: bytes, masked: bool = True) -> tuple[int, bytes, bytes] | None:
    """(opcode, payload, rest) of the first complete frame in ``buf``, or None. Fragments are not
    reassembled: the clients' hellos, pings and closes are single frames."""
    if len(buf) < 2:
        return None
    opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
    at = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, at = struct.unpack_from("!H", buf, 2)[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, at = struct.unpack_from("!Q", buf, 2)[0], 10
    mask = b""
    if buf[1] & 0x80:
        if len(buf) < at + 4:
            return None
        mask, at = buf[at : at + 4], at + 4
    if len(buf) < at + n:
        return None
    payload = buf[at : at + n]
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    elif masked:
        pass  # an unmasked client frame: read it anyway (we are not a conformance test)
    return opcode, payload, buf[at + n :]


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


__all__ = ["CHUNK", "Blast", "Dialect", "Firehose", "Template", "build", "capture", "frame"]
