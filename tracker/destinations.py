"""Where a channel may connect: this host (loopback), private networks, and never-allowed addresses.

Two channels take a destination from configuration and must not be turned against the
machine or network callwatch runs in:

- email: a login without TLS sends the password in clear text, acceptable only to this
  host (``is_loopback_host``) or when ``notifiers.email.allow_plaintext_login`` says so;
- webhook: a subscriber's URL is POSTed to from inside the network, so it must not reach
  the cloud's metadata service (credentials for the machine), link-local addresses, or,
  unless ``notifiers.webhook.allow_private`` is set, private networks (``webhook_url_problem``).

The policy for a webhook's address, in order:

1. loopback (``127.0.0.0/8``, ``::1``, the name ``localhost``): allowed. It is this host,
   set up by whoever runs callwatch; a local relay listens there, and so do the demo's and
   the tests' receivers.
2. cloud metadata (``169.254.169.254``, ``169.254.170.2``, ``fd00:ec2::254``,
   ``100.100.100.200``, ``192.0.0.192`` and the names ``metadata.google.internal``,
   ``metadata.goog``, ``instance-data.ec2.internal``), link-local (``169.254.0.0/16``,
   ``fe80::/10``), unspecified (``0.0.0.0`` reaches this host), multicast, broadcast and
   reserved addresses: never.
3. any other address that is not globally routable (``10/8``, ``172.16/12``, ``192.168/16``,
   ``100.64/10``, ``fc00::/7``, documentation and benchmark ranges): only with
   ``allow_private``.
4. everything else: allowed.

An address is read the way the system's resolver reads it, so ``2852039166``,
``0xA9FEA9FE`` and ``169.254.43518`` are ``169.254.169.254``, and an IPv6 address that
carries an IPv4 one (``::ffff:169.254.169.254``, NAT64 ``64:ff9b::/96``, 6to4) is judged
by the IPv4 address. A host name is judged by name here (no DNS: this runs when files are
loaded, offline); the webhook channel resolves names again before each POST.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv6Address

Address = IPv4Address | IPv6Address

ALLOW_PRIVATE = "notifiers.webhook.allow_private"
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean…
    "169.254.170.2",  # AWS ECS task credentials
    "fd00:ec2::254",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
))
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "instance-data.ec2.internal"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: what inet_aton may read as an IPv4 address (decimal, octal and hex parts); names rarely look so
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


def host_address(host: str) -> Address | None:
    """The IP address ``host`` is a literal of, or None for a name.

    Brackets, an IPv6 zone (``%eth0``) and one trailing dot are ignored; IPv4 is read as
    ``inet_aton`` reads it (the system's resolver accepts the same short and numeric forms).
    """
    text = host.strip().removeprefix("[").removesuffix("]").removesuffix(".")
    text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(text):
        try:
            return IPv4Address(socket.inet_aton(text))  # pure parsing, no lookup
        except OSError:
            return None
    return None


def _embedded_ipv4(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), else the address itself."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address literal: this machine, judged without DNS."""
    if host.strip().removesuffix(".").lower() == "localhost":
        return True
    address = host_address(host)
    return address is not None and _embedded_ipv4(address).is_loopback


def is_internal_host(host: str) -> bool:
    """Whether ``host`` is written as an internal address: ``localhost``, a ``.localhost`` or
    ``.internal`` name, or an address literal that is not globally routable (loopback,
    private, link-local, in any form the resolver reads). Judged without DNS: the HTTP
    client's redirect policy uses it as a guard, not a firewall."""
    name = host.strip().removeprefix("[").removesuffix("]").removesuffix(".").lower()
    if name == "localhost" or name.endswith((".localhost", ".internal")):
        return True
    address = host_address(host)
    return address is not None and not _embedded_ipv4(address).is_global


def address_problem(address: Address, *, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to ``address`` (see the module docstring), or None."""
    ip = _embedded_ipv4(address)
    if ip.is_loopback:
        return None
    shown = str(address) if ip == address else f"{address} ({ip})"
    if address in METADATA_ADDRESSES or ip in METADATA_ADDRESSES:
        return f"{shown} is a cloud metadata address: never allowed"
    if ip.is_link_local:
        return f"{shown} is a link-local address: never allowed (cloud metadata services live there)"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:  # 240/4 holds the broadcast
        return f"{shown} is not a unicast address a webhook can be sent to: never allowed"
    if not ip.is_global and not allow_private:
        return (f"{shown} is a private address: set {ALLOW_PRIVATE} = true to send webhooks "
                "into your own network")
    return None


def webhook_url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` may not be a webhook destination, or None; judged without DNS.

    Never quotes the URL (a Slack or Teams webhook URL is a secret): at most its host.
    """
    import httpx  # here: loading a subscriber's channel settings must stay cheap

    try:
        parsed = httpx.URL(url.strip())  # as the client will read it, so both agree on the host
    except (httpx.InvalidURL, ValueError):
        return "not a valid URL"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "not an http(s) URL"
    if parsed.userinfo:
        return ("a webhook URL must not hold a user name or password: secrets belong in the "
                "environment (notifiers.webhook.secret_env names the signing secret's variable)")
    host = parsed.host
    if host.removesuffix(".").lower() in METADATA_NAMES:
        return f"{host} is a cloud metadata service: never allowed"
    address = host_address(host)
    if address is None:
        return None
    return address_problem(address, allow_private=allow_private)
