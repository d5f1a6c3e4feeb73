"""HTTP/1.1 with keep-alive over the standard library's ``http.client``.

One persistent connection per thread: a worker's poller, heartbeater and
each slot keep their own, so no request waits for another's connection and
no lock is held across a request. ``http.client`` costs a fraction of the
CPU per request of the usual third-party clients, which is what keeps a
no-op worker fast (see the package README, "Performance").

This module only moves bytes and maps answers to errors: it never retries
a request (except once on a kept-alive connection the server had already
closed, before any byte of an answer arrived) and never sleeps.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any, Dict, Optional, Set, Tuple
from urllib.parse import quote, urlsplit

from .errors import ApiError, TransportError

__all__ = ["Transport", "quote_path"]

USER_AGENT = "tasker-sdk-python/0.1.0"


def quote_path(segment: str) -> str:
    """One path segment, percent-encoded."""
    return quote(str(segment), safe="")


class Transport:
    """Sends JSON requests to one server URL, with an optional bearer token."""

    def __init__(self, base_url: str, token: Optional[str] = None, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"server URL {base_url!r} must look like http://host:port or https://host"
            )
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._local = threading.local()
        self._by_thread: Dict[int, http.client.HTTPConnection] = {}
        self._aborted: Set[int] = set()
        self._lock = threading.Lock()

    def _connection(self, timeout: float) -> Tuple[http.client.HTTPConnection, bool]:
        """This thread's connection and whether it was used before."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            conn.timeout = timeout
            return conn, True
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=timeout)
        self._local.conn = conn
        with self._lock:
            self._by_thread[threading.get_ident()] = conn
        return conn, False

    def close(self) -> None:
        """Closes this thread's connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._lock:
                self._by_thread.pop(threading.get_ident(), None)

    def abort(self, thread_id: int) -> None:
        """Cuts the connection of thread ``thread_id`` from any thread: a
        request it is waiting on (a long-poll) fails at once with a
        :class:`TransportError`, and the server sees the client go away."""
        with self._lock:
            conn = self._by_thread.get(thread_id)
            self._aborted.add(thread_id)
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw_body: Optional[bytes] = None,
        content_type: str = "application/json",
        timeout: Optional[float] = None,
        query: Optional[Dict[str, Any]] = None,
    ) -> Tuple[int, Any]:
        """Sends one request; returns ``(status, parsed JSON or None)`` for a
        2xx, raises :class:`ApiError` for any other status and
        :class:`TransportError` when no answer arrived."""
        if query:
            pairs = [f"{quote_path(k)}={quote_path(v)}" for k, v in query.items() if v is not None]
            if pairs:
                path = f"{path}?{'&'.join(pairs)}"
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        data: Optional[bytes] = raw_body
        if data is None and body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        elif method == "POST":
            data = b""
        wait = self.timeout if timeout is None else timeout
        status, reply_headers, payload = self._exchange(method, self._prefix + path, data, headers, wait)
        parsed: Any = None
        if payload:
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = None
        if 200 <= status < 300:
            return status, parsed
        raise _api_error(status, reply_headers, parsed, payload)

    def _exchange(
        self, method: str, path: str, data: Optional[bytes], headers: Dict[str, str], timeout: float
    ) -> Tuple[int, http.client.HTTPMessage, bytes]:
        me = threading.get_ident()
        with self._lock:
            self._aborted.discard(me)
        for _ in range(2):
            conn, reused = self._connection(timeout)
            try:
                conn.request(method, path, body=data, headers=headers)
                reply = conn.getresponse()
                payload = reply.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                self.close()
                with self._lock:
                    aborted = me in self._aborted
                # A kept-alive connection the server closed while idle: the
                # request never reached it, so sending it again is safe
                # (unless the connection was cut on purpose by abort()).
                if reused and not aborted:
                    continue
                raise TransportError(f"{method} {path}: {error!r}") from error
            except (OSError, http.client.HTTPException) as error:
                self.close()
                if isinstance(error, socket.timeout):
                    raise TransportError(f"{method} {path}: timed out after {timeout:g}s") from error
                raise TransportError(f"{method} {path}: {error!r}") from error
            if reply.will_close:
                self.close()
            return reply.status, reply.headers, payload
        raise TransportError(f"{method} {path}: the connection closed twice")  # pragma: no cover


def _api_error(status: int, headers: http.client.HTTPMessage, parsed: Any, payload: bytes) -> ApiError:
    retry_after: Optional[float] = None
    header = headers.get("Retry-After")
    if header:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return ApiError(
            status,
            str(error.get("code", f"http_{status}")),
            str(error.get("message", "")),
            error.get("details"),
            retry_after,
        )
    text = payload[:200].decode("utf-8", "replace").strip()
    return ApiError(status, f"http_{status}", text or f"HTTP {status}", None, retry_after)
