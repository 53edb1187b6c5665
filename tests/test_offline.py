"""The suite cannot reach the network: pytest-socket (pyproject's ``--allow-hosts``) refuses
every host but loopback. Fixtures and tests name real URLs (portal pages, Telegram's API,
document links) as data only; if one were ever fetched, it would fail here, loudly."""

from __future__ import annotations

import socket

import httpx
import pytest
from pytest_socket import SocketConnectBlockedError

# pytest-socket warns as it refuses; the refusal is what is tested
refusing = pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")


@refusing
def test_a_public_address_is_refused() -> None:
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("93.184.215.14", 443), timeout=1)


@refusing
def test_httpx_to_a_public_address_is_refused() -> None:
    """By address: a name would already fail at DNS on this machine, which proves nothing
    about a machine that has DNS."""
    with pytest.raises(SocketConnectBlockedError):
        httpx.get("https://93.184.215.14/search-api/prod/rest/search", timeout=1)


def test_loopback_stays_open() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
