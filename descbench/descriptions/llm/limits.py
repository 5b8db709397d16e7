"""What one language-model request may cost a run: a deadline per request and a size per answer.

**Deadline.** An HTTP client's ``timeout`` bounds each read, not the request: a server that sends one
byte every half second keeps a request with ``timeout=3`` open for minutes. :func:`deadline_http_client`
gives the ``openai`` client an HTTP client whose every request (connecting, sending, the headers and the
body's last byte) ends within ``seconds``: each phase's timeout is capped at the time left, and at the
deadline a watchdog shuts the request's socket down, which ends a read blocked in any phase (the socket
is taken from the HTTP library's documented ``trace`` extension as the connection opens). The request then
fails as a timeout, which the ``openai`` client retries like any other (each attempt with its own
deadline: a prompt takes at most ``(max_retries + 1) x seconds`` plus the backoff waits). Connections are
not kept alive between requests, so that every request's socket is its own (a new TCP connection per
answer: negligible beside the answer's generation).

**Size.** :func:`bound_answer` cuts an answer to :data:`MAX_ANSWER_CHARS` characters (at the last line
break before the limit) and its bullets to :data:`MAX_BULLETS`; what was cut is returned so that the
caller records it. A sane answer (a few hundred tokens, a handful of bullets) is never near either bound.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from descbench.descriptions.llm.parse import parse_descriptors

#: an answer longer than this is cut at the last line break before it (and recorded)
MAX_ANSWER_CHARS = 32_000
#: bullets kept of one answer (the first ones; the rest are recorded as dropped)
MAX_BULLETS = 100


def bound_answer(
    raw: str,
    *,
    continues_bullet: bool = False,
    max_chars: int = MAX_ANSWER_CHARS,
    max_bullets: int = MAX_BULLETS,
) -> tuple[str, list[str], dict[str, int]]:
    """``(raw text kept, its descriptors, what was cut)``; the last is ``{}`` when the answer was within bounds,
    else ``{"answer_chars": <length as answered>, "bullets": <bullets as answered>}``."""
    kept = raw
    if len(raw) > max_chars:
        head = raw[:max_chars]
        kept = head[: head.rfind("\n")] if "\n" in head else head  # no half bullet at the end
    descriptors = parse_descriptors(kept, continues_bullet=continues_bullet)
    if len(kept) == len(raw) and len(descriptors) <= max_bullets:
        return raw, descriptors, {}
    found = (
        len(descriptors) if len(kept) == len(raw) else len(parse_descriptors(raw, continues_bullet=continues_bullet))
    )
    return kept, descriptors[:max_bullets], {"answer_chars": len(raw), "bullets": found}


# --------------------------------------------------------------------------- the deadline


@cache
def _http_module() -> Any:
    """The HTTP library the installed ``openai`` client is built on (``httpx``, or a fork of it)."""
    import openai

    for cls in openai.DefaultHttpxClient.__mro__:
        package = cls.__module__.split(".")[0]
        if cls.__name__ == "Client" and package != "openai":
            return importlib.import_module(package)
    return importlib.import_module("httpx")


class _Watchdog:
    """Shuts the sockets of one request down when its deadline passes (a blocked read then returns at once)."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def watch(self, stream: Any) -> None:
        sock = stream.get_extra_info("socket") if hasattr(stream, "get_extra_info") else None
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shut(sock)

    def trace(self, then: Callable | None) -> Callable[[str, dict], None]:
        """An httpcore ``trace`` callback that hands every new connection's socket to the watchdog."""

        def trace(event: str, info: dict) -> None:
            if event.endswith(("connect_tcp.complete", "connect_unix_socket.complete", "start_tls.complete")):
                self.watch(info.get("return_value"))
            if then is not None:
                then(event, info)

        return trace

    def stop(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


def deadline_http_client(seconds: float) -> Any:
    """An HTTP client for ``openai.OpenAI(http_client=...)`` whose every request ends within ``seconds``.

    It is the ``openai`` client's own default HTTP client (its proxies from the environment, its connection
    limits) with keep-alive off and :meth:`send` watched: the per-phase timeouts capped at ``seconds``, the
    request's socket shut down at the deadline, and a transport error after the deadline raised as a timeout.
    """
    import openai

    http = _http_module()
    seconds = float(seconds)

    class DeadlineClient(openai.DefaultHttpxClient):
        def send(self, request: Any, **kwargs: Any) -> Any:
            watchdog = _Watchdog(seconds)
            timeouts = dict(request.extensions.get("timeout") or {})
            capped = {k: seconds if v is None else min(seconds, v) for k, v in timeouts.items()}
            request.extensions = {
                **request.extensions,
                "timeout": capped or dict.fromkeys(("connect", "read", "write", "pool"), seconds),
                "trace": watchdog.trace(request.extensions.get("trace")),
            }
            try:
                return super().send(request, **kwargs)  # stream=False (the openai client's calls): the body is read
            except http.TransportError:
                if watchdog.fired or watchdog.left() <= 0:
                    message = f"no complete answer within the deadline of {seconds:g} s"
                    raise http.ReadTimeout(message, request=request) from None
                raise
            finally:
                watchdog.stop()

    return DeadlineClient(limits=http.Limits(max_keepalive_connections=0))
