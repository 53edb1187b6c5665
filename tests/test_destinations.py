"""The destination policy as a table: which host literals are this machine, which webhook
addresses are never, privately or always allowed."""

from __future__ import annotations

import pytest

from tracker.destinations import host_address, is_loopback_host, webhook_url_problem


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("LOCALHOST.", True), ("127.0.0.1", True), ("127.8.9.10", True),
    ("127.1", True), ("0x7f000001", True), ("::1", True), ("[::1]", True),
    ("::ffff:127.0.0.1", True),
    ("localhost.localdomain", False), ("vm", False), ("127.0.0.1.nip.io", False),
    ("10.0.0.1", False), ("mail.example.org", False), ("", False),
    ("0.0.0.0", False),  # noqa: S104 - a host to judge, not one to bind
])
def test_loopback_hosts_are_judged_as_written(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(("host", "address"), [
    ("2852039166", "169.254.169.254"), ("0xA9FEA9FE", "169.254.169.254"),
    ("0251.0376.0251.0376", "169.254.169.254"), ("169.254.43518", "169.254.169.254"),
    ("169.254.169.254.", "169.254.169.254"), ("fe80::1%25eth0", "fe80::1"),
    ("cafe.be", None), ("1.2.3.4 junk", None), ("example.org", None),
])
def test_host_literals_are_read_as_the_resolver_reads_them(host: str, address: str | None) -> None:
    found = host_address(host)
    assert (str(found) if found is not None else None) == address


@pytest.mark.parametrize(("url", "never", "private"), [
    ("https://hooks.slack.com/services/T0/B0/x", False, False),
    ("https://8.8.8.8/hook", False, False),
    ("http://127.0.0.1:9000/hook", False, False),
    ("http://localhost/hook", False, False),
    ("http://10.0.0.5/hook", False, True),
    ("http://172.31.255.255/hook", False, True),
    ("http://192.168.0.1/hook", False, True),
    ("http://100.64.1.1/hook", False, True),
    ("http://[fc00::5]/hook", False, True),
    ("http://169.254.169.254/", True, False),
    ("http://[::ffff:a9fe:a9fe]/", True, False),
    ("http://[64:ff9b::a9fe:a9fe]/", True, False),  # NAT64 of 169.254.169.254
    ("http://[2002:a9fe:a9fe::1]/", True, False),  # 6to4 of the same
    ("http://metadata.goog/", True, False),
    ("http://[fe80::1]/", True, False),
    ("http://224.0.0.251/", True, False),
    ("http://255.255.255.255/", True, False),
    ("http://[::]/", True, False),
    ("https://u:p@hooks.example.org/", True, False),
    ("ftp://hooks.example.org/", True, False),
    ("http://☃.example/", True, False),
])
def test_webhook_destinations(url: str, never: bool, private: bool) -> None:
    strict = webhook_url_problem(url, allow_private=False)
    lenient = webhook_url_problem(url, allow_private=True)
    assert (lenient is not None) is never
    assert (strict is not None) is (never or private)
    if private:
        assert strict is not None and "notifiers.webhook.allow_private" in strict
