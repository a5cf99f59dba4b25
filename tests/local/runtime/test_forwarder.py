"""The InvokeEndpoint forwarder (KeepAlivePool) against scripted raw HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from catkit.local.fleet.forward import ForwardProtocolError, KeepAlivePool


async def _serve(responses: list[bytes], seen: list[bytes], *, close_after: set[int] = frozenset()):
    """A server answering request i with responses[i]; closes the connection after indices in close_after."""
    counter = {"n": 0, "conns": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter["conns"] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode().split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length)
                seen.append(head + body)
                i = counter["n"]
                counter["n"] += 1
                writer.write(responses[i])
                await writer.drain()
                if i in close_after:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], counter


def scripted(responses: list[bytes], calls, *, close_after: set[int] = frozenset()):
    """Run ``await calls(pool, port)`` with a fresh KeepAlivePool against a :func:`_serve` server,
    closing both after; returns (what ``calls`` returned, the server's counter, the requests seen)."""

    async def main():
        seen: list[bytes] = []
        server, port, counter = await _serve(responses, seen, close_after=close_after)
        pool = KeepAlivePool()
        try:
            result = await calls(pool, port)
        finally:
            pool.close()
            server.close()
        return result, counter, seen

    return asyncio.run(main())


def test_keep_alive_reuse_content_length_and_chunked():
    responses = [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Amzn-SageMaker-Custom-Attributes: a=1\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
        b"HTTP/1.1 415 Unsupported Media Type\r\nContent-Length: 4\r\n\r\nnope",
    ]

    async def calls(pool, port):
        r1 = await pool.post("127.0.0.1", port, "/invocations", {"Content-Type": "application/json"}, b"{}", 5)
        r2 = await pool.post("127.0.0.1", port, "/invocations", {}, b"x" * 100_000, 5)
        r3 = await pool.post("127.0.0.1", port, "/invocations", {}, b"", 5)
        return r1, r2, r3

    (r1, r2, r3), counter, seen = scripted(responses, calls)
    assert r1 == (200, {"content-type": "application/json", "content-length": "2"}, b"{}")
    assert r2[0] == 200 and r2[2] == b"abcde"
    assert r2[1]["x-amzn-sagemaker-custom-attributes"] == "a=1"
    assert (r3[0], r3[2]) == (415, b"nope")
    assert counter["conns"] == 1  # one keep-alive connection for all three
    assert seen[0].startswith(b"POST /invocations HTTP/1.1\r\n") and b"Content-Type: application/json" in seen[0]
    assert seen[1].endswith(b"x" * 100_000)


def test_connection_close_and_body_until_eof():
    responses = [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"]

    async def calls(pool, port):
        return [await pool.post("127.0.0.1", port, "/x", {}, b"", 5) for _ in range(2)]

    (r1, r2), counter, _ = scripted(responses, calls, close_after={0})
    assert r1[2] == b"until-eof" and r2[2] == b"z"
    assert counter["conns"] == 2


def test_connection_closed_by_the_instance_is_not_reused():
    responses = [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"]

    async def calls(pool, port):
        assert (await pool.post("127.0.0.1", port, "/x", {}, b"", 5))[2] == b"a"
        await asyncio.sleep(0.05)
        assert (await pool.post("127.0.0.1", port, "/x", {}, b"", 5))[2] == b"b"

    # The server closes after the first answer without saying so (a keep-alive timeout).
    _, counter, _ = scripted(responses, calls, close_after={0})
    assert counter["conns"] == 2


def test_timeout_and_bad_responses_and_header_injection():
    async def main():
        async def silent(reader, writer):
            await asyncio.sleep(5)

        async def garbage(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"SPAM\r\n\r\n")
            await writer.drain()

        s1 = await asyncio.start_server(silent, "127.0.0.1", 0)
        s2 = await asyncio.start_server(garbage, "127.0.0.1", 0)
        pool = KeepAlivePool()
        try:
            with pytest.raises(TimeoutError):
                await pool.post("127.0.0.1", s1.sockets[0].getsockname()[1], "/x", {}, b"", 0.2)
            with pytest.raises(ForwardProtocolError):
                await pool.post("127.0.0.1", s2.sockets[0].getsockname()[1], "/x", {}, b"", 2)
            with pytest.raises(ValueError, match="line break"):
                await pool.post("127.0.0.1", s2.sockets[0].getsockname()[1], "/x", {"Accept": "a\r\nX-Evil: 1"}, b"", 2)
            with pytest.raises(ConnectionError):
                await pool.post("127.0.0.1", 1, "/x", {}, b"", 2)  # nothing listens on port 1
        finally:
            pool.close()
            s1.close()
            s2.close()

    asyncio.run(main())


def test_response_parsed_alike_whole_or_split_at_any_byte():
    """A response in one read takes the single-segment path (head parsed from the read itself); split
    anywhere it goes through the buffer: both give the same (status, headers, body)."""
    from unittest import mock

    from catkit.local.fleet.forward import _Conn

    responses = [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ]

    async def parse(pieces: list[bytes]):
        conn = _Conn()
        conn.transport = mock.Mock()
        conn.waiter = waiter = asyncio.get_running_loop().create_future()
        for piece in pieces:
            conn.data_received(piece)
        return waiter.result(), bytes(conn.buf)

    async def main():
        for raw in responses:
            whole, rest = await parse([raw])
            assert rest == b""
            for cut in range(1, len(raw)):
                assert await parse([raw[:cut], raw[cut:]]) == (whole, b"")
        (status, _, body), rest = await parse([responses[0] + b"junk"])  # bytes past the body stay
        assert (status, body, rest) == (200, b"hello", b"junk")  # in buf: the pool will not reuse it

    asyncio.run(main())


def test_each_request_on_a_reused_connection_times_out_at_its_own_deadline():
    """One timer per connection, re-armed lazily: a request due sooner than the armed timer still
    times out at its own deadline, and a timer left by an earlier, shorter request does not end a
    later, longer one early."""

    async def main():
        answered = {"n": 0}

        async def answer_then_hang(reader, writer):  # answers the first request on a connection only
            while True:
                await reader.readuntil(b"\r\n\r\n")
                if answered["n"] % 2:
                    await asyncio.sleep(30)
                answered["n"] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
                await writer.drain()

        server = await asyncio.start_server(answer_then_hang, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = KeepAlivePool()
        loop = asyncio.get_running_loop()
        try:
            outcomes = []
            for first, second in ((60.0, 0.2), (0.1, 0.6)):
                assert (await pool.post("127.0.0.1", port, "/x", {}, b"", first))[2] == b"a"
                started = loop.time()
                task = asyncio.ensure_future(pool.post("127.0.0.1", port, "/x", {}, b"", second))
                done, _ = await asyncio.wait({task}, timeout=20)
                assert task in done, "the shorter request was not timed out before the longer timer"
                outcomes.append((type(task.exception()), loop.time() - started >= second))
                answered["n"] += 1
            assert outcomes == [(TimeoutError, True), (TimeoutError, True)]
        finally:
            pool.close()
            server.close()

    asyncio.run(main())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract Unix sockets are Linux's")
def test_instances_are_reached_over_their_unix_socket(h):
    async def body(h):
        await h.deploy("ep", count=1)
        assert (await h.invoke("ep", b"over unix"))["Body"] == b"over unix"
        ((inst,),) = [v.instances for v in h.manager._endpoint("ep").variants]
        assert inst.unix_socket.startswith("@catkit-")
        (conn,) = h.manager.http._idle[("127.0.0.1", inst.port)]
        assert conn.transport.get_extra_info("socket").family == socket.AF_UNIX

    h.run(body)
