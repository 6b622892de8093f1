"""A flaky TCP proxy for the resilience tests: the network between Relight and Dovecot.

It listens on 127.0.0.1 (a free port) and forwards every connection to a target (the
private Dovecot's plain port) until told to misbehave:

    with FlakyProxy(dovecot.port) as proxy:
        proxy.cut_after(300_000)       # every connection: closed after 300 kB to the client
        proxy.cut_after(300_000, once=True)   # only the next connection
        proxy.stall_after(0)           # connections hang: nothing reaches the client
        proxy.refuse()                 # nobody listens on the port: connection refused
        proxy.resume()                 # healthy again, on the same port

Bytes are counted per connection, from server to client (what a FETCH answer is made
of); a limit applies to the connections opened after it was set. A cut closes both
sides at once (the client reads EOF in the middle of whatever it was reading). Each
connection is served by two threads, one per direction; `close` ends them all.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from dataclasses import dataclass, field

__all__ = ["FlakyProxy"]

_CHUNK = 65536


@dataclass(frozen=True)
class _Fault:
    """What happens to a connection once `after` bytes went to the client."""

    after: int
    action: str  # "cut" or "stall"


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 that can cut, stall or refuse connections (see above)."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._fault: _Fault | None = None
        self._fault_once = False
        self._listening = True  # what the tests asked for; the accept thread follows
        self._request = 0  # bumped at each request, and `_applied` once the thread followed
        self._applied = 0
        self._followed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._waker_read, self._waker_write = socket.socketpair()
        self._listener: socket.socket | None = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        # Counters the tests read: connections accepted, faults applied, bytes to clients.
        self.accepted = 0
        self.cuts = 0
        self.stalls = 0
        self.bytes_to_client = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-accept")
        self._acceptor.daemon = True
        self._acceptor.start()

    # -- what the tests call ------------------------------------------------------------

    def cut_after(self, nbytes: int, *, once: bool = False) -> None:
        """Close each new connection (or only the next, `once`) after `nbytes` to the client."""
        self._set_fault(_Fault(nbytes, "cut"), once)

    def stall_after(self, nbytes: int, *, once: bool = False) -> None:
        """Forward nothing more to the client after `nbytes`; the connection stays open."""
        self._set_fault(_Fault(nbytes, "stall"), once)

    def refuse(self) -> None:
        """Stop listening: new connections are refused (ECONNREFUSED) until `resume`."""
        self._set_listening(listening=False)

    def resume(self) -> None:
        """Healthy again: listening on the same port, no cut, no stall."""
        with self._lock:
            self._fault = None
            self._fault_once = False
        self._set_listening(listening=True)

    def close(self) -> None:
        """Stop listening, close every connection, wait for the threads."""
        self._stopping.set()
        self._wake()
        self._acceptor.join(timeout=10)
        with self._lock:
            open_sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in open_sockets:
            _shut(sock)
        for thread in threads:
            thread.join(timeout=10)
        self._waker_read.close()
        self._waker_write.close()

    def __enter__(self) -> FlakyProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- listening ----------------------------------------------------------------------

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _set_fault(self, fault: _Fault, once: bool) -> None:
        with self._lock:
            self._fault = fault
            self._fault_once = once

    def _set_listening(self, *, listening: bool) -> None:
        """Ask the accept thread to open or close the listener; return once it has."""
        with self._lock:
            self._listening = listening
            self._request += 1
            request = self._request
        self._wake()
        with self._followed:
            if not self._followed.wait_for(lambda: self._applied >= request, timeout=10):
                raise RuntimeError("the proxy's accept thread did not answer")

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._waker_write.send(b"x")

    def _accept_loop(self) -> None:
        """Accept connections; only this thread opens and closes the listener."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._waker_read, selectors.EVENT_READ)
            if self._listener is not None:
                selector.register(self._listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _events in selector.select():
                    if key.fileobj is self._waker_read:
                        self._waker_read.recv(_CHUNK)
                    elif key.fileobj is self._listener:
                        client, _address = self._listener.accept()
                        self._serve(client)
                with self._lock:
                    listening = self._listening and not self._stopping.is_set()
                    request = self._request
                if listening and self._listener is None:
                    self._listener = self._listen(self.port)
                    selector.register(self._listener, selectors.EVENT_READ)
                elif not listening and self._listener is not None:
                    selector.unregister(self._listener)
                    self._listener.close()
                    self._listener = None
                with self._followed:
                    self._applied = request
                    self._followed.notify_all()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # -- one connection -----------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            self.accepted += 1
            fault = self._fault
            if self._fault_once:
                self._fault, self._fault_once = None, False
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            _shut(client)
            client.close()
            return
        server.settimeout(None)
        pair = _Pair(client, server)
        with self._lock:
            self._sockets |= {client, server}
        upstream = threading.Thread(target=self._pump_up, args=(pair,), name="proxy-up")
        downstream = threading.Thread(target=self._pump_down, args=(pair, fault), name="proxy-down")
        for thread in (upstream, downstream):
            thread.daemon = True
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _pump_up(self, pair: _Pair) -> None:
        """Client to server, unchanged."""
        try:
            while data := pair.client.recv(_CHUNK):
                pair.server.sendall(data)
        except OSError:
            pass
        finally:
            self._end(pair)

    def _pump_down(self, pair: _Pair, fault: _Fault | None) -> None:
        """Server to client, until the fault (if any) strikes."""
        sent = 0
        try:
            while True:
                room = _CHUNK if fault is None else min(_CHUNK, fault.after - sent)
                if room <= 0:
                    assert fault is not None
                    self._strike(pair, fault)
                    return
                data = pair.server.recv(room)
                if not data:
                    return
                pair.client.sendall(data)
                sent += len(data)
                with self._lock:
                    self.bytes_to_client += len(data)
        except OSError:
            pass
        finally:
            self._end(pair)

    def _strike(self, pair: _Pair, fault: _Fault) -> None:
        if fault.action == "cut":
            with self._lock:
                self.cuts += 1
            return  # the caller's `_end` closes both sides
        with self._lock:
            self.stalls += 1
        # Stalled: wait until the client gives up (its side closes) or the proxy stops.
        while not pair.closed.wait(timeout=0.2) and not self._stopping.is_set():
            pass

    def _end(self, pair: _Pair) -> None:
        """Close both sides once; the other direction's thread then ends too."""
        with self._lock:
            if pair.closed.is_set():
                return
            pair.closed.set()
            self._sockets -= {pair.client, pair.server}
        for sock in (pair.client, pair.server):
            _shut(sock)
            sock.close()


@dataclass(frozen=True)
class _Pair:
    client: socket.socket
    server: socket.socket
    closed: threading.Event = field(default_factory=threading.Event)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
