"""Purpose-built servers and measurements for the hardening tests.

Everything listens on 127.0.0.1 and runs on plain threads named ``hardening-*`` (the thread-leak
check only watches ``pumpsync*`` threads, but every server here still joins its threads on close).

- :class:`TcpServer`: accept loop + one handler thread per connection; the base of the others.
- :class:`RawWsServer`: does the WebSocket upgrade by hand, then lets the test write raw frames.
- :class:`HttpStatusServer`: answers the upgrade with a fixed HTTP status (and echoes the request).
- :class:`ConnectProxy`: an HTTP proxy (CONNECT tunnels and absolute-form GETs), optionally with auth.
- :class:`TlsFront`: terminates TLS and pipes the bytes to a plain server (the simulator).
- :func:`backlog_full_port`: a port whose SYNs are dropped, so connecting times out.
- :func:`make_certificates`: a throwaway CA and server certificates (``cryptography`` or ``openssl``).
- :class:`Resources`: RSS, open file descriptors and threads of this process.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import resource
import select
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


# ---------------------------------------------------------------- generic TCP server


class TcpServer:
    """Accepts on 127.0.0.1 and runs ``handle(conn)`` on a thread per connection."""

    def __init__(self, handle: Callable[[socket.socket], None] | None = None, name: str = "tcp") -> None:
        self.name = name
        self._handle = handle
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"hardening-{name}-accept", daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def handle(self, conn: socket.socket) -> None:
        if self._handle is not None:
            self._handle(conn)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
                thread = threading.Thread(target=self._serve, args=(conn,), name=f"hardening-{self.name}", daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except OSError:
            pass  # the client went away: part of the game here
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._acceptor.join(5)
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(5)

    def __enter__(self) -> TcpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def idle(self, conn: socket.socket) -> None:
        """Hold the connection open, reading and discarding, until the peer or the server ends."""
        conn.settimeout(0.1)
        while not self._stop.is_set():
            try:
                if not conn.recv(65536):
                    return
            except TimeoutError:
                continue


class SilentServer(TcpServer):
    """Accepts TCP, reads the WebSocket upgrade request, never answers it."""

    def __init__(self) -> None:
        super().__init__(name="silent")

    def handle(self, conn: socket.socket) -> None:
        self.idle(conn)


def read_head(conn: socket.socket, limit: int = 65536) -> bytes:
    """An HTTP request or response head, up to and including the blank line."""
    data = b""
    conn.settimeout(10)
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(1)  # byte by byte: what follows the head belongs to someone else
        if not chunk:
            raise ConnectionError("closed before the end of the head")
        data += chunk
        if len(data) > limit:
            raise ConnectionError("head too long")
    return data


def header(head: bytes, name: str) -> str | None:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


# ---------------------------------------------------------------- raw WebSocket server


def frame(opcode: int, payload: bytes, fin: bool = True, length: int | None = None) -> bytes:
    """A server-to-client frame (unmasked); ``length`` may lie about the payload's size."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


class RawWs:
    """One accepted, upgraded connection, driven by the test's script."""

    def __init__(self, conn: socket.socket, request: bytes, server: RawWsServer) -> None:
        self.sock = conn
        self.request = request
        self.server = server
        self._buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_text(self, text: str | bytes) -> None:
        self.send(frame(OP_TEXT, text.encode() if isinstance(text, str) else text))

    def read_frame(self, timeout: float = 10.0) -> tuple[int, bytes]:
        """The next client frame (unmasked): (opcode, payload)."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.1)
        while True:
            parsed = _parse_client_frame(self._buf)
            if parsed is not None:
                opcode, payload, used = parsed
                self._buf = self._buf[used:]
                return opcode, payload
            if time.monotonic() > deadline or self.server.stopping:
                raise TimeoutError("no client frame")
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise ConnectionError("client closed")
            self._buf += chunk

    def wait_for(self, opcode: int, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            op, payload = self.read_frame(max(0.01, deadline - time.monotonic()))
            if op == opcode:
                return payload

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def hold(self) -> None:
        """Keep the connection until the client or the server ends it (reading what it sends)."""
        self.server.idle(self.sock)


def _parse_client_frame(buf: bytes) -> tuple[int, bytes, int] | None:
    if len(buf) < 2:
        return None
    opcode = buf[0] & 0x0F
    n = buf[1] & 0x7F
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = struct.unpack("!Q", buf[2:10])[0], 10
    masked = buf[1] & 0x80
    mask = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        mask, pos = buf[pos : pos + 4], pos + 4
    if len(buf) < pos + n:
        return None
    payload = buf[pos : pos + n]
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload, pos + n


class RawWsServer(TcpServer):
    """Answers the upgrade with 101, then runs ``script(ws)`` on the connection's thread."""

    def __init__(self, script: Callable[[RawWs], None], name: str = "rawws") -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.sessions: list[RawWs] = []
        super().__init__(name=name)

    def handle(self, conn: socket.socket) -> None:
        head = read_head(conn)
        self.requests.append(head)
        key = header(head, "Sec-WebSocket-Key") or ""
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ws = RawWs(conn, head, self)
        self.sessions.append(ws)
        self.script(ws)


# ---------------------------------------------------------------- HTTP status on the upgrade


class HttpStatusServer(TcpServer):
    """Answers every request with ``status``; the body echoes the request line (a careless server
    reflecting the URL, key included, is exactly what must never reach a log)."""

    def __init__(self, status: int, extra_headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.extra = extra_headers or {}
        self.requests: list[bytes] = []
        super().__init__(name=f"http{status}")

    def handle(self, conn: socket.socket) -> None:
        head = read_head(conn)
        self.requests.append(head)
        request_line = head.split(b"\r\n", 1)[0]
        body = b"refused: " + request_line + b"\n"
        lines = [
            f"HTTP/1.1 {self.status} Refused",
            "Content-Type: text/plain",
            f"Content-Length: {len(body)}",
            "Connection: close",
            f"X-Echo: {request_line.decode('latin-1')}",
        ]
        lines += [f"{k}: {v}" for k, v in self.extra.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.idle(conn)


# ---------------------------------------------------------------- proxies and TLS


def _pipe(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side ends (one thread, select on both)."""
    socks = [a, b]
    for s in socks:
        s.setblocking(False)
    try:
        while not stop.is_set():
            ready = [s for s in socks if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready, _, _ = select.select(socks, [], [], 0.1)
            for src in ready:
                dst = b if src is a else a
                try:
                    data = src.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                if not data:
                    return
                dst.setblocking(True)
                dst.settimeout(10)
                dst.sendall(data)
                dst.setblocking(False)
    except (OSError, ssl.SSLError):
        return
    finally:
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


class ConnectProxy(TcpServer):
    """An HTTP proxy: ``CONNECT host:port`` tunnels (the stream) and absolute-form requests (REST).

    With ``credentials=(user, password)`` it answers 407 to requests without the right
    ``Proxy-Authorization``. ``log`` records (method, target) for each request."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.log: list[tuple[str, str]] = []
        self.refused = 0
        super().__init__(name="proxy")

    def _authorized(self, head: bytes) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return header(head, "Proxy-Authorization") == f"Basic {expected}"

    def handle(self, conn: socket.socket) -> None:
        head = read_head(conn)
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        self.log.append((method, target))
        if not self._authorized(head):
            self.refused += 1
            conn.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host, int(port)), timeout=5)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pipe(conn, upstream, self._stop)
            return
        # Absolute form: GET http://host:port/path HTTP/1.1 -> origin form to host:port.
        rest = target.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.rpartition(":")
        upstream = socket.create_connection((host, int(port or 80)), timeout=5)
        lines = head.decode("latin-1").split("\r\n")
        lines[0] = f"{method} /{path} {lines[0].rsplit(' ', 1)[1]}"
        kept = [ln for ln in lines if not ln.lower().startswith(("proxy-authorization:", "proxy-connection:"))]
        upstream.sendall("\r\n".join(kept).encode("latin-1"))
        _pipe(conn, upstream, self._stop)


class TlsFront(TcpServer):
    """TLS on 127.0.0.1:port in front of a plain TCP server on ``target_port``."""

    def __init__(self, certfile: Path, keyfile: Path, target_port: int) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile, keyfile)
        self.target_port = target_port
        self.handshakes_failed = 0
        self.handshakes_ok = 0
        super().__init__(name="tls")

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1  # the client refused our certificate: the point of the test
            return
        self.handshakes_ok += 1
        upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        _pipe(tls, upstream, self._stop)


def backlog_full_port() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket whose accept queue is full: further SYNs are dropped, connects time out.

    Linux queues ``backlog + 1`` connections; one client fills a ``listen(0)`` queue."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    return listener, fillers


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA certificate (the ca_bundle option)
    cert: Path  # server certificate for 127.0.0.1 / localhost, signed by the CA
    key: Path
    wrong_cert: Path  # signed by the CA, but for another host name
    wrong_key: Path
    self_signed: Path  # a lone self-signed certificate for 127.0.0.1 (its own trust anchor)
    self_signed_key: Path


def make_certificates(directory: Path) -> Certificates:
    """A private CA and two server certificates, made with ``cryptography`` (or the openssl CLI)."""
    try:
        return _certificates_with_cryptography(directory)
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl command is available")
        return _certificates_with_openssl(directory)


def _certificates_with_cryptography(directory: Path) -> Certificates:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def save_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("pumpsync test CA"))
        .issuer_name(name("pumpsync test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(names: list[x509.GeneralName], stem: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(stem))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path = directory / f"{stem}.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, save_key(key, directory / f"{stem}.key")

    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    here = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert, key = leaf(here, "server")
    wrong_cert, wrong_key = leaf([x509.DNSName("somewhere-else.example")], "wrong")
    # What `openssl req -x509 -subj /CN=localhost -addext subjectAltName=...` makes.
    lone_key = ec.generate_private_key(ec.SECP256R1())
    lone = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(name("localhost"))
        .public_key(lone_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(here), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(lone_key.public_key()), critical=False)
        .sign(lone_key, hashes.SHA256())
    )
    lone_path = directory / "self-signed.pem"
    lone_path.write_bytes(lone.public_bytes(serialization.Encoding.PEM))
    lone_key_path = save_key(lone_key, directory / "self-signed.key")
    return Certificates(ca_path, cert, key, wrong_cert, wrong_key, lone_path, lone_key_path)


def _certificates_with_openssl(directory: Path) -> Certificates:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=pumpsync test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )

    def leaf(stem: str, san: str) -> None:
        run(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            f"/CN={stem}",
            "-keyout",
            f"{stem}.key",
            "-out",
            f"{stem}.csr",
        )
        (directory / f"{stem}.ext").write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
        run(
            "x509",
            "-req",
            "-in",
            f"{stem}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            f"{stem}.ext",
            "-out",
            f"{stem}.pem",
        )

    leaf("server", "DNS:localhost,IP:127.0.0.1")
    leaf("wrong", "DNS:somewhere-else.example")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=localhost", "-keyout", "self-signed.key", "-out", "self-signed.pem",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")  # fmt: skip
    d = directory
    return Certificates(d / "ca.pem", d / "server.pem", d / "server.key", d / "wrong.pem", d / "wrong.key",
                        d / "self-signed.pem", d / "self-signed.key")  # fmt: skip


# ---------------------------------------------------------------- measurements


@dataclass(frozen=True)
class Sample:
    rss: int  # bytes
    fds: int
    threads: int
    cpu: float  # process CPU seconds (all threads)
    wall: float  # monotonic seconds


class Resources:
    """What a long run must keep flat: memory, file descriptors, threads. Linux (/proc)."""

    @staticmethod
    def available() -> bool:
        return os.path.exists("/proc/self/status") and os.path.isdir("/proc/self/fd")

    @staticmethod
    def sample() -> Sample:
        rss = 0
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return Sample(
            rss,
            len(os.listdir("/proc/self/fd")),
            threading.active_count(),
            usage.ru_utime + usage.ru_stime,
            time.monotonic(),
        )


@contextmanager
def cpu_meter() -> Iterator[Callable[[], float]]:
    """``with cpu_meter() as share: ...; share()`` is CPU time / wall time of this process since entry."""
    start = Resources.sample() if Resources.available() else None
    t0, c0 = time.monotonic(), time.process_time()

    def share() -> float:
        wall = max(1e-9, time.monotonic() - t0)
        if start is not None:
            return (Resources.sample().cpu - start.cpu) / wall
        return (time.process_time() - c0) / wall

    yield share


def soak_seconds(default: float = 6.0) -> float:
    """The length of the long runs: ``PUMPSYNC_SOAK_SECONDS`` (short by default, for every test run)."""
    value = os.environ.get("PUMPSYNC_SOAK_SECONDS")
    return float(value) if value else default


# ---------------------------------------------------------------- log checks


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """No record carries a traceback and nothing that looks like one reached stdout/stderr."""
    out, err = capfd.readouterr()
    with_trace = [r.getMessage() for r in caplog.records if r.exc_info or r.stack_info]
    assert not with_trace, f"records with a traceback: {with_trace}"
    assert "Traceback" not in out + err, err[-2000:]
    return out + err


def warnings_of(caplog: pytest.LogCaptureFixture, logger: str = "pumpsync") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith(logger) and r.levelno >= logging.WARNING]


def first(items: list[Any], predicate: Callable[[Any], bool]) -> Any:
    return next((item for item in items if predicate(item)), None)


# ---------------------------------------------------------------- the simulator in another process


class SimProcess:
    """A :class:`pumpsync.simulator.Simulator` in a child process (see ``sim_process.py``).

    ``call(method, *args, **kwargs)`` runs a simulator method there; its memory is not ours."""

    def __init__(self, **options: Any) -> None:
        import json
        import sys
        import tempfile

        self._json = json
        self._lock = threading.Lock()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        script = Path(__file__).with_name("sim_process.py")
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            text=True,
        )
        hello = self._read()
        self.ports: dict[str, int] = hello["ports"]

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise RuntimeError(f"the simulator process ended: {self._stderr.read()[-3000:].decode(errors='replace')}")
        return self._json.loads(line)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(self._json.dumps({"method": method, "args": args, "kwargs": kwargs}) + "\n")
            self.proc.stdin.flush()
            reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"simulator {method}: {reply['error']}")
        return reply["ok"]

    def url(self, provider: str) -> str:
        return f"ws://127.0.0.1:{self.ports[provider]}/v1/stream"

    def wait_for_subscribed(self, provider: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(c["subscriptions"] or c["ready"] for c in self.call("connections", provider)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no subscribed {provider} connection within {timeout} s")
            time.sleep(0.02)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"method": "stop"}\n')
                self.proc.stdin.flush()
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
