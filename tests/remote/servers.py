"""Object-store servers on loopback for the tests: moto's S3 and gcp-storage-emulator's GCS
(both real HTTP API servers), a proxy that cuts uploads short, and a server that answers
every request with an error."""

from __future__ import annotations

import contextlib
import http.server
import logging
import socket
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 API on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log in stderr
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def gcs_emulator(bucket: str) -> Iterator[str]:
    """gcp-storage-emulator's GCS JSON API on 127.0.0.1 with `bucket`; yields its URL."""
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    server = create_server("127.0.0.1", 0, in_memory=True, default_bucket=bucket)
    server.start()
    port = server._api._httpd.server_address[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _pipe(src: socket.socket, dst: socket.socket, cut_uploads: bool) -> None:
    """Copy `src` to `dst`; with `cut_uploads`, a request that uploads (PUT, or a POST to
    an upload endpoint) goes on only for its headers and 100 bytes of its body, then both
    connections are closed: an upload interrupted on the wire."""
    try:
        while chunk := src.recv(65536):
            if cut_uploads and (chunk.startswith(b"PUT ") or chunk.startswith(b"POST /upload")):
                end = chunk.find(b"\r\n\r\n")
                dst.sendall(chunk[: (end + 4 + 100) if end >= 0 else 100])
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


@contextlib.contextmanager
def cutting_proxy(upstream: str) -> Iterator[str]:
    """A TCP proxy to `upstream` (http://host:port) that interrupts every upload."""
    host, port = upstream.removeprefix("http://").split(":")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection((host, int(port)))
            threading.Thread(target=_pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=_pipe, args=(server, client, False), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


class _Failing(http.server.BaseHTTPRequestHandler):
    def _fail(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"<Error><Code>InternalError</Code><Message>storage is down</Message></Error>"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _fail

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def failing_server() -> Iterator[str]:
    """An HTTP server on loopback that answers every request with 500."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
