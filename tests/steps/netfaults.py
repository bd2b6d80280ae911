"""A TCP proxy on 127.0.0.1 that cuts chosen connections after N bytes from upstream.

It stands between a client and the local S3 server to make "the connection dropped in the
middle of the download" happen for real: the client sees a short read on a live socket.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence


class CuttingProxy:
    """Forward connections to `upstream`; connection i is cut after `cuts[i]` bytes."""

    def __init__(self, upstream: tuple[str, int], cuts: Sequence[int | None]) -> None:
        self.upstream = upstream
        self.cuts = list(cuts)
        self.connections = 0
        self.cut_count = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> CuttingProxy:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accept.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            index = self.connections
            self.connections += 1
            limit = self.cuts[index] if index < len(self.cuts) else None
            thread = threading.Thread(target=self._pipe, args=(client, limit), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pipe(self, client: socket.socket, limit: int | None) -> None:
        upstream = socket.create_connection(self.upstream, timeout=10)
        done = threading.Event()

        def forward_requests() -> None:
            try:
                while data := client.recv(65536):
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                done.set()

        feeder = threading.Thread(target=forward_requests, daemon=True)
        feeder.start()
        sent = 0
        try:
            upstream.settimeout(0.2)
            while not done.is_set() and not self._stop.is_set():
                try:
                    data = upstream.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    client.sendall(data[: max(0, limit - sent)])
                    self.cut_count += 1
                    client.shutdown(socket.SHUT_RDWR)
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()
            feeder.join(timeout=5)
