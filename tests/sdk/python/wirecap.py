"""A tiny loopback HTTP server that records every request an SDK sends and
answers with a canned VPC-style JSON body, used to pin the SDKs' wire shapes
(shared/reference/vpc-bgp-api.md section 1) independently of the emulator.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from sigcheck import parse_pairs


@dataclass
class Captured:
    """One request as it arrived on the wire."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)

    @property
    def action(self) -> str | None:
        """The API action, wherever the SDK put it."""
        return (
            self.query.get("Action")
            or self.form.get("Action")
            or self.headers.get("x-acs-action")
        )


CANNED = {
    "CreateBgpGroup": {"BgpGroupId": "bgpg-capture000000000001"},
    "CreateBgpPeer": {"BgpPeerId": "bgp-capture0000000000001"},
    "DescribeBgpPeers": {
        "TotalCount": 0,
        "PageNumber": 1,
        "PageSize": 10,
        "BgpPeers": {"BgpPeer": []},
    },
}


class WireCapture:
    """Context manager running the capture server on 127.0.0.1:<random>."""

    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self._lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                req = Captured(
                    method=self.command,
                    path=url.path,
                    raw_query=url.query,
                    headers=headers,
                    body=body,
                    query=dict(parse_pairs(url.query, plus_is_space=True)),
                )
                if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                    req.form = dict(parse_pairs(body.decode(), plus_is_space=True))
                with capture._lock:
                    capture.requests.append(req)
                payload = {"RequestId": "CAPTURE-0000"}
                payload.update(CANNED.get(req.action or "", {}))
                out = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json;charset=utf-8")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = _handle
            do_POST = _handle

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def hostport(self) -> str:
        """``127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> "WireCapture":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def only(self) -> Captured:
        """The single request captured so far (asserts there is exactly one)."""
        assert len(self.requests) == 1, f"expected 1 request, got {len(self.requests)}"
        return self.requests[0]
