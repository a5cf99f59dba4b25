"""The gateway's InvokeEndpoint fast lane (catkit.local.fast_invoke) answers byte for byte as the general path.

Each request is sent as raw bytes twice over a socket - with the fast lane on and off
(``Gateway.fast_lane``) - and the two answers are compared with the Date header and request ids
blanked (the only parts that differ between any two requests); the fast lane's use is counted, so a
case meant for it cannot silently fall back and one meant for aiohttp cannot take it.
"""

from __future__ import annotations

import asyncio
import collections
import random
import re
import socket
import time

import pytest
from aiohttp import web

from catkit.local import access_log, fast_invoke
from catkit.local.errors import AwsError
from catkit.local.fast_invoke import response_bytes
from catkit.local.services.base import BaseService

AUTH = ("AWS4-HMAC-SHA256 Credential=210987654321/20261130/eu-west-1/sagemaker/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc")
_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DATE = re.compile(rb"\r\nDate: [^\r]*")


#: Endpoint names whose invocation fails, and how: a ModelError, an unexpected exception.
_FAILURES = {
    "model-error": lambda: AwsError("ModelError", "Received client error (400) from primary", 424, fields={
        "OriginalStatusCode": 400, "OriginalMessage": "bad", "LogStreamArn": "arn:x"}),
    "boom": lambda: RuntimeError("secret internal detail"),
}


class Runtime(BaseService):
    """InvokeEndpoint answers chosen by the endpoint name: success (echo reversed, custom attributes
    upper-cased), :data:`_FAILURES`, a slow answer."""

    def __init__(self) -> None:
        self.calls = 0

    async def invoke_endpoint(self, params, ctx):
        self.calls += 1
        name = params["EndpointName"]
        if name in _FAILURES:
            raise _FAILURES[name]()
        if name == "slow":
            await asyncio.sleep(0.3)
        out = {"Body": params.get("Body", b"")[::-1], "InvokedProductionVariant": "AllTraffic"}
        if "Accept" in params:
            out["ContentType"] = params["Accept"]
        if "CustomAttributes" in params:
            out["CustomAttributes"] = params["CustomAttributes"].upper()
        return out


def _read_response(sock: socket.socket, buf: bytearray) -> bytes:
    """One HTTP response (Content-Length delimited, or until EOF) from ``sock``; rest stays in ``buf``."""
    deadline = time.monotonic() + 30
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            m = re.search(rb"\r\ncontent-length: *(\d+)", bytes(buf[:end]), re.I)
            if m is not None and len(buf) >= end + 4 + int(m.group(1)):
                n = end + 4 + int(m.group(1))
                out = bytes(buf[:n])
                del buf[:n]
                return out
        assert time.monotonic() < deadline, bytes(buf)
        chunk = sock.recv(65536)
        if not chunk:
            out = bytes(buf)
            buf.clear()
            return out
        buf += chunk


def _exchange(port: int, parts: list[bytes], answers: int = 1, pause: float = 0.0) -> list[bytes]:
    """Send ``parts`` (separate writes, ``pause`` seconds apart) on one connection; read ``answers``."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for i, part in enumerate(parts):
            if i and pause:
                time.sleep(pause)  # lets the server see the parts as separate reads (not asserted on)
            sock.sendall(part)
        buf = bytearray()
        return [_read_response(sock, buf) for _ in range(answers)]


def _blank(raw: bytes) -> bytes:
    return _DATE.sub(b"\r\nDate: -", _ID.sub(b"<id>", raw))


def _invoke(name: str = "ep-1", body: bytes = b"abc", headers: dict[str, str] | None = None, *,
            version: str = "1.1", query: str = "", auth: str | None = AUTH) -> bytes:
    lines = [f"POST /endpoints/{name}/invocations{query} HTTP/{version}", "Host: 127.0.0.1"]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if not any(k.lower() == "transfer-encoding" for k in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


#: The fast lane drives aiohttp's private handler state: with an aiohttp it was not written for the
#: gateway leaves it off (test_an_unknown_aiohttp_gets_the_general_path_alone), and so do these tests.
needs_fast_lane = pytest.mark.skipif(not fast_invoke.fast_lane_available(),
                                     reason="this aiohttp is not one the fast lane knows (TESTED_AIOHTTP)")


@pytest.fixture
def lanes(inproc_backend_factory):
    """``run(parts, answers, pause)``: the answers with the fast lane on and off (blanked), and how
    many requests the fast lane served in the first run."""
    if not fast_invoke.fast_lane_available():
        pytest.skip("this aiohttp is not one the fast lane knows (TESTED_AIOHTTP)")
    backend = inproc_backend_factory(services={"sagemaker-runtime": Runtime()})
    gw = backend._gateway
    served = []
    serve_fast = gw.fast_invoke

    def counting(*args):
        served.append(1)
        return serve_fast(*args)

    gw.fast_invoke = counting

    def run(parts: list[bytes], answers: int = 1, pause: float = 0.0) -> tuple[list[bytes], list[bytes], int]:
        served.clear()
        gw.fast_lane = True
        fast = _exchange(gw.port, parts, answers, pause)
        n = len(served)
        gw.fast_lane = False
        try:
            general = _exchange(gw.port, parts, answers, pause)
        finally:
            gw.fast_lane = True
        assert not served[n:]
        return [_blank(r) for r in fast], [_blank(r) for r in general], n

    run.backend = backend
    return run


def test_random_invocations_answer_byte_for_byte_like_the_general_path(lanes):
    rng = random.Random(18)
    statuses: collections.Counter[bytes] = collections.Counter()
    names = ["ep-1", "ep%2D1", "Ep-2", "not_valid!", "model-error", "boom", "x" * 63, "x" * 64]
    optional = {"Content-Type": ["text/csv", "application/json", "a/b; charset=utf-8"],
                "Accept": ["text/plain", "*/*", "application/x-npy"],
                "X-Amzn-SageMaker-Custom-Attributes": ["k=v", "x" * 1024, "x" * 1025],
                "X-Amzn-SageMaker-Target-Variant": ["AllTraffic", "bad variant!"],
                "X-Amzn-SageMaker-Inference-Id": ["id-1", ""], "x-unknown-header": ["1"]}
    for _ in range(60):
        headers = {(k.lower() if rng.random() < 0.2 else k): rng.choice(v) for k, v in optional.items()
                   if rng.random() < 0.5}
        body = rng.randbytes(rng.choice([0, 1, 64, 5000, 70_000]))
        fast, general, served = lanes([_invoke(rng.choice(names), body, headers)])
        # a body past one loopback segment (64 KiB) may arrive in two reads: aiohttp's then
        assert served == 1 or len(body) > 60_000
        assert fast == general, (headers, len(body))
        statuses[fast[0][9:12]] += 1
    assert all(statuses[s] for s in (b"200", b"400", b"424", b"500")), statuses


def test_chunked_and_keep_alive_sequences_take_the_fast_lane_alike(lanes):
    chunked = _invoke(body=b"", headers={"Transfer-Encoding": "chunked"}) + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    fast, general, served = lanes([chunked])
    assert served == 1 and fast == general and fast[0].endswith(b"edcba")
    # several on one connection, one after the other, with a general request between them
    health = b"GET /_catkit/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    parts = [_invoke(body=b"1"), _invoke(name="model-error"), health, _invoke(body=b"22")]
    fast, general, served = lanes(parts, answers=4, pause=0.05)
    assert served == 3
    assert fast[:2] + fast[3:] == general[:2] + general[3:] and b'"status": "ok"' in fast[2]


@pytest.mark.parametrize("case", ["connection-close", "http-1.0", "query", "expect", "unsigned", "foreign-origin",
                                  "pipelined", "split-body", "get", "too-large", "bad-request"])
def test_requests_the_fast_lane_leaves_to_aiohttp_answer_as_before(lanes, case):
    answers, pause = 1, 0.0
    if case == "connection-close":
        parts = [_invoke(headers={"Connection": "close"})]
    elif case == "http-1.0":
        parts = [_invoke(version="1.0")]
    elif case == "query":
        parts = [_invoke(query="?x=1")]
    elif case == "expect":
        parts = [_invoke(headers={"Expect": "100-continue"})]
    elif case == "unsigned":
        parts = [_invoke(auth=None)]
    elif case == "foreign-origin":
        parts = [_invoke(headers={"Origin": "https://evil.example"})]
    elif case == "pipelined":
        parts, answers = [_invoke(body=b"1") + _invoke(body=b"2")], 2
    elif case == "split-body":
        whole = _invoke(body=b"abcdef")
        parts, pause = [whole[:-3], whole[-3:]], 0.2
    elif case == "get":
        parts = [_invoke().replace(b"POST", b"GET", 1)]
    elif case == "too-large":
        parts = [_invoke(body=b"x" * (6 * 1024 * 1024 + 1))]
    else:
        parts = [b"POST /endpoints/ep-1/invocations HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"]
    fast, general, served = lanes(parts, answers, pause)
    assert fast == general
    if case not in ("split-body", "pipelined"):  # (those may arrive in other reads than they were sent in)
        assert served == 0
    assert fast[0].startswith(b"HTTP/1.")


def test_requests_pipelined_behind_a_fast_one_are_answered_in_order(lanes):
    first = _invoke(name="slow", body=b"first")
    big = [bytes([65 + i]) * 100_000 for i in range(4)]  # more than is held before reading pauses
    parts = [first, _invoke(body=b"second"), _invoke(body=b"third"), b"".join(_invoke(body=b) for b in big)]
    fast, general, served = lanes(parts, answers=7, pause=0.02)
    assert fast == general and served >= 1
    assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in fast] == [b"tsrif", b"dnoces", b"driht", *big]


def test_fast_lane_writes_the_same_access_log_line(lanes, tmp_path):
    log_file = tmp_path / "access.log"
    saved = access_log._sink
    access_log.configure(log_file)
    try:
        lanes([_invoke(query="")])
        access_log.flush()
        lines = log_file.read_text().splitlines()[-2:]
    finally:
        access_log.configure(None)
        access_log._sink = saved
    fields = [line.split(" ", 2)[2].rsplit(" ", 1)[0] for line in lines]  # no timestamp, no duration
    assert len(fields) == 2 and fields[0] == fields[1]
    assert fields[0] == '127.0.0.1 "POST /endpoints/ep-1/invocations" sagemaker-runtime InvokeEndpoint 200'


def test_stopping_lets_a_fast_request_in_flight_finish(lanes):
    backend = lanes.backend
    port = backend._gateway.port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_invoke(name="slow", body=b"last"))
        deadline = time.monotonic() + 30
        runtime = backend.services["sagemaker-runtime"]
        while runtime.calls == 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        backend.run_sync(backend.stop())
        answer = _read_response(sock, bytearray())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"tsal")


@needs_fast_lane
@pytest.mark.parametrize("status", [200, 201, 204, 304, 400, 413, 424, 500, 503])
@pytest.mark.parametrize("headers,body", [({}, b""), ({}, b"abc"), ({"content-type": "text/plain"}, b"abc"),
                                          ({"Content-Type": "a/b", "x-amzn-RequestId": "r"}, b""),
                                          ({"Server": "me", "date": "then"}, b"x")])
def test_response_bytes_are_what_aiohttp_writes_for_a_response(status, headers, body):
    async def handler(request: web.BaseRequest) -> web.Response:
        await request.read()
        return web.Response(status=status, headers=headers, body=body)

    async def run() -> bytes:
        runner = web.ServerRunner(web.Server(handler), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz")
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"\r\nContent-Length: (\d+)", head)
            rest = await reader.readexactly(int(m.group(1))) if m else b""
            writer.close()
            return head + rest
        finally:
            await runner.cleanup()

    written = asyncio.run(run())
    assert _DATE.sub(b"", written) == _DATE.sub(b"", response_bytes(status, headers, body))


def test_the_fast_lane_knows_only_the_aiohttp_it_was_tested_with(monkeypatch):
    high = fast_invoke.TESTED_AIOHTTP[1]
    assert not fast_invoke.fast_lane_available("3.13.5")  # names its parser _request_parser
    assert not fast_invoke.fast_lane_available(f"{high[0]}.{high[1]}.0")
    assert not fast_invoke.fast_lane_available("4.0.0a1")
    assert not fast_invoke.fast_lane_available("garbage")
    if fast_invoke.fast_lane_available():  # the installed release: a missing piece of state turns it off
        monkeypatch.delattr(fast_invoke.RequestHandler, "_handler_waiter")
        assert not fast_invoke.fast_lane_available()


def test_an_unknown_aiohttp_gets_the_general_path_alone(inproc_backend_factory, monkeypatch):
    monkeypatch.setattr(fast_invoke, "fast_lane_available", lambda *a: False)
    backend = inproc_backend_factory(services={"sagemaker-runtime": Runtime()})
    gw = backend._gateway
    assert type(gw._runner.server) is web.Server  # aiohttp's own handler, no fast lane
    answers = [_blank(r) for r in _exchange(gw.port, [_invoke(body=b"abc"), _invoke(name="model-error")], answers=2,
                                            pause=0.05)]
    assert answers[0].startswith(b"HTTP/1.1 200 OK") and answers[0].endswith(b"cba")
    assert answers[1].startswith(b"HTTP/1.1 424")
