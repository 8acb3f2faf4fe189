"""Checking where a webhook may go (SSRF) and masking targets for display.

A user types a URL that the server will POST to, so the URL must not reach the dashboard's own network:
https only in production, and every address its host resolves to must be public (not loopback, link-local
(169.254.169.254, the cloud metadata service), private, shared, multicast, reserved or unspecified; IPv4 and
IPv6, including IPv4-mapped IPv6). The check runs when the channel is saved and again before every send, and
the send connects to the address that was checked (see alerts.transports), so a DNS answer that changes in
between cannot redirect it. IPv4 addresses inside IPv6 ones (6to4 2002::/16, Teredo, IPv4-mapped) are
checked as the IPv4 address they carry. ALERT_WEBHOOK_ALLOW_PRIVATE lets loopback and private addresses through (a
local catcher, an internal relay), never the metadata services (link-local, Azure's 168.63.129.16).

A refusal does not say which address the host resolved to: the form would be a way to map the dashboard's
internal DNS names to their addresses.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class TargetRefused(ValueError):
    """The URL may not be used; the message is for the user and never contains the URL."""


@dataclass(frozen=True)
class CheckedTarget:
    url: str
    host: str
    port: int
    address: str  # the checked IP address the send connects to


def check_url(url: str) -> CheckedTarget:
    """Resolve the URL's host and check every address; TargetRefused says why not."""
    parts = _parse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(parts.hostname, port)
    if any(_never_allowed(address) for address in addresses):
        raise TargetRefused("This URL's host resolves to a link-local, metadata or unspecified address, which "
                            "webhooks may never reach.")
    if not settings.ALERT_WEBHOOK_ALLOW_PRIVATE and any(_why_not_public(address) for address in addresses):
        raise TargetRefused(
            "This URL's host does not resolve to public addresses only; webhooks may only reach public addresses "
            "(an administrator can allow private ones with ALERT_WEBHOOK_ALLOW_PRIVATE)."
        )
    return CheckedTarget(url=url, host=parts.hostname, port=port, address=str(addresses[0]))


def _parse(url: str):
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError:
        raise TargetRefused("Enter a valid URL.") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused("Enter a full URL starting with https://.")
    if parts.scheme == "http" and not settings.ALERT_WEBHOOK_ALLOW_HTTP:
        raise TargetRefused("Webhook URLs must use https://.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("Put no user name or password in the URL.")
    return parts


def _resolve(host: str, port: int) -> list:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise TargetRefused("This URL's host name could not be resolved.") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])  # drop an IPv6 zone id
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetRefused("This URL's host name could not be resolved.")
    return addresses


# Public addresses that are a cloud host's own services all the same: Azure's wire server (platform metadata).
_METADATA = (ipaddress.ip_network("168.63.129.16/32"),)
# Special-purpose ranges some Python versions call global (IETF protocol assignments, e.g. 192.0.0.192).
_NOT_GLOBAL = (ipaddress.ip_network("192.0.0.0/24"),)


# IPv6 prefixes whose last 32 bits are an IPv4 address a gateway reaches: NAT64 (RFC 6052) and the old
# IPv4-compatible form (::a.b.c.d).
_EMBEDDING = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))


def _carried(address):
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4, Teredo's client, NAT64, IPv4-compatible), else
    the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if any(address in prefix for prefix in _EMBEDDING) and int(address) > 1:  # (not :: nor ::1)
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _never_allowed(address) -> str | None:
    """What is refused even when private targets are allowed: the metadata services, and no address at all."""
    address = _carried(address)
    if address.is_link_local or address.is_unspecified or address.is_multicast:
        return "a link-local, unspecified or multicast"
    if any(address in network for network in _METADATA):
        return "a cloud metadata"
    return None


def _why_not_public(address) -> str | None:
    """Why the address is not a public one (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and (address.is_site_local or address.teredo is not None):
        return "a site-local or Teredo"  # (a Teredo server is also refused by what it carries)
    address = _carried(address)
    if _never_allowed(address):
        return _never_allowed(address)
    if any(address in network for network in _NOT_GLOBAL):
        return "a non-public"
    for attribute, words in (
        ("is_unspecified", "an unspecified"),
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_private", "a private"),
        ("is_reserved", "a reserved"),
    ):
        if getattr(address, attribute):
            return words
    if not address.is_global:  # shared address space (100.64/10), documentation ranges, and the like
        return "a non-public"
    return None


def mask_url(url: str) -> str:
    """scheme://host/…last4: enough to recognise a URL, not enough to use it (Slack and Teams URLs are secrets)."""
    parts = urlsplit(url)
    rest = url[-4:] if len(parts.path) + len(parts.query) > 4 else ""
    return f"{parts.scheme}://{parts.netloc}/…{rest}"
