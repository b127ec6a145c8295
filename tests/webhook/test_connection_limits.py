"""The webhook's listener over real TLS on 127.0.0.1: slow or silent clients are cut off, and connections are bounded.

Every wait on a socket is bounded; the bounds sit well above the (short) timeouts the server is given, and well
below what the server would allow without them (aiohttp keeps a silent connection for an hour, asyncio a handshake
for a minute, and drains a stalled body for 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from aihpa.webhook.certs import CertificateAuthority, ServingCert
from aihpa.webhook.server import metrics_of
from aihpa.webhook.settings import WebhookSettings
from tests.webhook.conftest import load_fixture
from tests.webhook.test_cli_commands import main
from tests.webhook.test_tls_server import Served, handshakes_settled, serve

HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
#: How long a test waits for the server to act on a timeout above: generous, and far below the old behaviour.
BOUND = 4.0
#: The server's clock starts a little before the client's (at its end of the handshake, or when the head is parsed),
#: so a cut is only required to come later than half the timeout: it is the timeout's doing, not an instant refusal.
EARLIEST = 0.5

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def strict(tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]) -> AsyncIterator[Served]:
    """The webhook with short header and body timeouts."""
    settings = WebhookSettings(
        model_version="bilstm-test", header_timeout_s=HEADER_TIMEOUT, body_timeout_s=BODY_TIMEOUT
    )
    s, runner = await serve(tmp_path, pki, settings=settings)
    try:
        yield s
    finally:
        await s.session.close()
        await runner.cleanup()


async def connect(s: Served, *, tls: bool = True) -> Streams:
    async with asyncio.timeout(BOUND):
        return await asyncio.open_connection("127.0.0.1", s.port, ssl=s.client_ssl if tls else None)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    async with asyncio.timeout(BOUND):
        with contextlib.suppress(ConnectionError, OSError):  # the server may have cut it first
            await writer.wait_closed()


async def read_until_closed(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took (at most BOUND)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    received = b""
    async with asyncio.timeout(BOUND):
        while True:
            try:
                chunk = await reader.read(65536)
            except (ConnectionError, OSError):
                break  # an abort instead of a clean TLS close: closed all the same
            if not chunk:
                break
            received += chunk
    return received, loop.time() - started


@pytest.mark.parametrize("tls", [True, False], ids=["nothing-after-the-handshake", "no-handshake"])
async def test_a_silent_connection_is_closed_after_the_header_timeout(strict: Served, tls: bool) -> None:
    """A client that sends nothing after the TLS handshake, or never starts it, holds its connection no longer
    than the header timeout."""
    reader, writer = await connect(strict, tls=tls)
    try:
        received, elapsed = await read_until_closed(reader)
    finally:
        await close(writer)
    assert received == b""
    assert HEADER_TIMEOUT * EARLIEST <= elapsed < BOUND
    if not tls:
        await handshakes_settled()


async def test_a_half_sent_request_head_is_closed_after_the_header_timeout(strict: Served) -> None:
    reader, writer = await connect(strict)
    try:
        writer.write(b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appli")
        await writer.drain()
        received, elapsed = await read_until_closed(reader)
    finally:
        await close(writer)
    assert received == b""
    assert HEADER_TIMEOUT * EARLIEST <= elapsed < BOUND


async def test_a_half_sent_body_is_answered_408_and_the_connection_closed_after_the_body_timeout(
    strict: Served,
) -> None:
    reader, writer = await connect(strict)
    try:
        writer.write(
            b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{\"apiVersion\": "
        )
        await writer.drain()
        received, elapsed = await read_until_closed(reader)
    finally:
        await close(writer)
    assert received.startswith(b"HTTP/1.1 408 "), received[:80]
    assert b"request body did not arrive in time" in received
    # the read gives up after the body timeout, then the rest of the body is drained for as long again at most
    assert BODY_TIMEOUT * EARLIEST <= elapsed < BOUND


async def test_admissions_still_work_and_reuse_one_connection_with_short_timeouts(strict: Served) -> None:
    opened = 0

    async def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(count)
    connector = aiohttp.TCPConnector(ssl=strict.client_ssl, limit=1)
    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:
        for _ in range(3):
            async with session.post(strict.url + "/mutate", json=load_fixture("create-labeled")) as resp:
                assert resp.status == 200
                answer = await resp.json()
            assert answer["response"]["allowed"] is True and "patch" in answer["response"]
    # kept alive between answers: the head deadline restarts after each one instead of cutting the connection
    assert opened == 1


async def raw_get(streams: Streams, path: str) -> bytes:
    reader, writer = streams
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    received, _ = await read_until_closed(reader)
    return received


async def test_connections_beyond_the_limit_wait_until_one_ends(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    settings = WebhookSettings(model_version="bilstm-test", max_connections=2, header_timeout_s=30.0)
    s, runner = await serve(tmp_path, pki, settings=settings)
    held: list[Streams] = []
    third: asyncio.Task[Streams] | None = None
    try:
        held = [await connect(s), await connect(s)]  # handshakes done: both slots taken
        third = asyncio.create_task(connect(s))
        done, _ = await asyncio.wait({third}, timeout=0.5)
        assert not done, "a third connection was served while two held both slots"
        assert metrics_of(s.app).connections.collect()[0].samples[0].value == 2.0
        await close(held.pop(0)[1])
        async with asyncio.timeout(BOUND):
            streams = await third
        reply = await raw_get(streams, "/metrics")
        assert reply.startswith(b"HTTP/1.1 200 ")
        assert b"\naihpa_webhook_connections 2.0\n" in reply  # the one still held, and this one
        await close(streams[1])
    finally:
        if third is not None and not third.done():
            third.cancel()
            await asyncio.gather(third, return_exceptions=True)
        for _, writer in held:
            await close(writer)
        await s.session.close()
        await runner.cleanup()


async def test_a_slot_is_held_during_the_handshake_and_freed_when_it_times_out(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    settings = WebhookSettings(model_version="bilstm-test", max_connections=1, header_timeout_s=HEADER_TIMEOUT)
    s, runner = await serve(tmp_path, pki, settings=settings)
    try:
        _, silent = await connect(s, tls=False)  # takes the only slot and never says hello
        loop = asyncio.get_running_loop()
        started = loop.time()
        streams = await connect(s)  # waits for the silent one's handshake to time out
        assert loop.time() - started >= HEADER_TIMEOUT * EARLIEST
        assert (await raw_get(streams, "/healthz")).startswith(b"HTTP/1.1 200 ")
        await close(streams[1])
        await close(silent)
        await handshakes_settled()
    finally:
        await s.session.close()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"header_timeout_s": 0.0}, "header_timeout_s must be a positive number"),
        ({"body_timeout_s": float("nan")}, "body_timeout_s must be a positive number"),
        ({"max_connections": 0}, "max_connections must be 1..65536"),
    ],
)
def test_the_settings_refuse_limits_that_would_serve_nothing_or_everything(
    changes: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        WebhookSettings(**changes)  # type: ignore[arg-type]


def test_the_webhook_command_refuses_a_connection_limit_of_zero_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["webhook", "--max-connections", "0", "--cert-dir", "d"]) == 2
    err = capsys.readouterr().err
    assert "max_connections must be 1..65536" in err and len(err.strip().splitlines()) == 1
