"""Slow clients and stopping on the gateway (issue 14 findings 7, 8): idle connections and trickled
request heads are dropped, a trickled body is answered RequestTimeout, connections past the cap get
503, and the backend stops at once after a 413 on a >6 MB body whose client keeps sending nothing."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from catkit.testing import LocalBackend, process_exited, wait_until

sys.path.insert(0, str(Path(__file__).parent))  # rel_support (importlib mode)

from rel_support import raw_connect, read_until_closed

LIMITS = {"CATKIT_HTTP_HEADER_TIMEOUT_SECONDS": "1", "CATKIT_HTTP_BODY_TIMEOUT_SECONDS": "1",
          "CATKIT_HTTP_MAX_CONNECTIONS": "6", "CATKIT_LOCAL_COMPONENTS": ""}


def test_gateway_drops_slow_clients_and_caps_connections(tmp_path):
    b = LocalBackend(tmp_path / "home", time_scale=600, env=LIMITS)
    try:
        b.start()
        port = int(b.url.rsplit(":", 1)[1])
        idle, trickle = raw_connect(port), raw_connect(port)
        trickle.sendall(b"GET /_catkit/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        t0 = time.monotonic()
        assert read_until_closed(idle) == b"" and read_until_closed(trickle) == b""
        assert time.monotonic() - t0 < 9  # the 1 s head timeout, not the 10 s recv timeout
        body = raw_connect(port)
        body.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: SageMaker.ListModels\r\n"
                     b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{")
        answer = read_until_closed(body)
        assert b" 408 " in answer.split(b"\r\n", 1)[0] and b"RequestTimeout" in answer, answer
        held = [raw_connect(port) for _ in range(6)]
        extra = raw_connect(port)
        answer = read_until_closed(extra)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        for s in (idle, trickle, body, extra, *held):
            s.close()
        wait_until(b.healthy, 10, what="the gateway to answer again once the slow clients are gone")
    finally:
        b.close()


def test_stop_is_prompt_after_a_413(tmp_path):
    b = LocalBackend(tmp_path / "home", time_scale=600, env={"CATKIT_LOCAL_COMPONENTS": ""})
    try:
        b.start()
        pid = b.info()["pid"]
        s = raw_connect(int(b.url.rsplit(":", 1)[1]))
        s.sendall(b"POST /endpoints/x/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Authorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sagemaker/aws4_request, "
                  b"SignedHeaders=host, Signature=00\r\nContent-Length: 7000000\r\n\r\n" + b"x" * 1_000_000)
        assert s.recv(65536).startswith(b"HTTP/1.1 413")
        t0 = time.monotonic()
        b.stop()
        wait_until(lambda: process_exited(pid), 8, what="the backend to exit")
        assert time.monotonic() - t0 < 8  # aiohttp's lingering read of the refused body took ~10 s
        s.close()
    finally:
        b.close()
