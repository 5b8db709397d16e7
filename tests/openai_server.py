"""A small OpenAI-compatible HTTP server for tests (127.0.0.1 only).

Speaks ``POST /v1/chat/completions`` and ``POST /v1/completions``. What it answers is
scripted by a ``respond(request) -> Reply`` function; every request is recorded with
its arrival time, so tests can count calls and observe backoff.
Run as a script (``python tests/openai_server.py PORTFILE [DELAY]``) it serves canned
bullet answers, each after ``DELAY`` seconds, for subprocess tests.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

QUERY = re.compile(r"distinguishing a (.+?) in a photo\?")


@dataclass
class Reply:
    status: int = 200
    text: str | None = None  # the answer text (status 200)
    delay: float = 0.0
    body: Any = None  # a raw JSON body to send instead (malformed answers)
    raw: bytes | None = None  # bytes to send as they are (a body that is not JSON)
    drip: float = 0.0  # send the answer one byte every ``drip`` seconds (a slow or hostile server)
    drip_headers: bool = False  # drip the status line and headers too, not only the body


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    time: float
    headers: dict[str, str]

    @property
    def prompt(self) -> str:
        if "messages" in self.body:
            return "\n\n".join(m["content"] for m in self.body["messages"])
        return self.body.get("prompt", "")

    @property
    def classname(self) -> str | None:
        """The class of the query (the last question of the prompt)."""
        found = QUERY.findall(self.prompt)
        return found[-1] if found else None


def bullets_for(classname: str, n: int = 3) -> str:
    """A canned completion-style answer (continues the open ``- `` line)."""
    return "\n- ".join(f"{classname} feature {i}" for i in range(1, n + 1))


def canned(request: Request) -> Reply:
    text = bullets_for(request.classname or "thing")
    if request.path.endswith("/chat/completions"):
        text = (
            f"A: There are several useful visual features to tell there is a {request.classname} in a photo:\n- " + text
        )
    return Reply(text=text)


@dataclass
class OpenAIStubServer:
    respond: Callable[[Request], Reply] = canned
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                req = Request(self.path, body, time.monotonic(), dict(self.headers))
                with stub._lock:
                    stub.requests.append(req)
                reply = stub.respond(req)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.body is not None:
                    payload = reply.body
                elif reply.status != 200:
                    payload = {"error": {"message": f"stub error {reply.status}", "type": "server_error"}}
                elif self.path.endswith("/chat/completions"):
                    payload = {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "stub"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": reply.text},
                            }
                        ],
                    }
                else:
                    payload = {
                        "id": "cmpl-stub",
                        "object": "text_completion",
                        "created": int(time.time()),
                        "model": body.get("model", "stub"),
                        "choices": [{"index": 0, "finish_reason": "stop", "text": reply.text, "logprobs": None}],
                    }
                data = reply.raw if reply.raw is not None else json.dumps(payload).encode()
                head = (
                    f"HTTP/1.1 {reply.status} OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n"
                ).encode()
                try:
                    if reply.drip:
                        if not reply.drip_headers:
                            self.wfile.write(head)
                        for byte in (head if reply.drip_headers else b"") + data:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(reply.drip)
                        return
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> OpenAIStubServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> OpenAIStubServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def calls_for(self, classname: str) -> int:
        with self._lock:
            return sum(r.classname == classname for r in self.requests)


if __name__ == "__main__":
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    server = OpenAIStubServer(lambda r: Reply(text=bullets_for(r.classname or "thing"), delay=delay)).start()
    with open(sys.argv[1], "w") as f:
        f.write(server.base_url)
    server.thread.join()
