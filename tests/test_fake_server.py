"""The fakes' HTTP server stays quiet when a client hangs up, as clients under load do."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from tracker.demo.fakes._server import FakeServer, Reply, Request


class SlowServer(FakeServer):
    def handle(self, request: Request) -> Reply:
        return Reply.text("late", delay=0.3)


def test_a_client_that_hangs_up_mid_answer_prints_no_traceback(
        capfd: pytest.CaptureFixture[str]) -> None:
    with SlowServer() as server:
        host, port = server.url.removeprefix("http://").split(":")
        for _ in range(3):
            client = socket.create_connection((host, int(port)))
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            # close with a reset, as a cancelled request does: the answer meets a dead socket
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        time.sleep(0.8)  # let the server try to answer all three
        assert len(server.requests) == 3
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Exception occurred" not in captured.err
