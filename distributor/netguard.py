"""Which network addresses content may make this service connect to.

Links in fetched listings and sitemaps, redirects and image URLs are chosen by whoever wrote that
content. Followed blindly they would make the worker read the cloud metadata service
(169.254.169.254), the Redis port or an intranet admin page, and publish what it found. So a host
is public when every address it resolves to is public, and the one decision `is_public` says
which addresses are not: loopback, private (RFC 1918, fc00::/7), shared (100.64/10), link-local
(169.254/16, fe80::/10), unspecified, multicast, reserved, and IPv6 forms carrying one of those
(IPv4-mapped, 6to4, NAT64).

The check runs before a request, for a clear error naming the URL, and again when the socket
connects (`public_session`), on the very addresses connected to: a name that resolves to a public
address first and to an internal one a moment later (DNS rebinding) is caught there.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from distributor.http import USER_AGENT

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_local = threading.local()


class AddressRefused(OSError):
    """A host resolves to an address this service must not connect to on content's behalf."""

    def __init__(self, host: str, address: IPAddress) -> None:
        self.host = host
        self.address = address
        super().__init__(f"{host} resolves to the non-public address {address}")


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address; the one rule for "may content send us there"."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in _NAT64:  # DNS64 gives every IPv4 host such an address: judge the IPv4 one
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and not is_public(address.sixtofour):
            return False
    return (
        address.is_global
        and not address.is_private
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to, in the resolver's order (tests give fake names theirs).

    Raises socket.gaierror when the name does not resolve.
    """
    try:
        return [ipaddress.ip_address(host.strip("[]").split("%")[0])]
    except ValueError:
        pass
    found: dict[IPAddress, None] = {}
    for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        found[ipaddress.ip_address(str(info[4][0]).split("%")[0])] = None
    return list(found)


def check(host: str, port: int) -> list[IPAddress]:
    """The addresses of `host`; AddressRefused when any of them is not public."""
    addresses = resolve(host, port)
    for address in addresses:
        if not is_public(address):
            raise AddressRefused(host, address)
    return addresses


def on_private_network(host: str, port: int) -> bool:
    """True when `host` resolves to a non-public address (a source on loopback or the intranet
    may follow its links there); False when it is public or does not resolve."""
    try:
        return not all(is_public(address) for address in resolve(host, port))
    except (OSError, UnicodeError):
        return False


def refusal(exc: BaseException | None) -> AddressRefused | None:
    """The AddressRefused behind an exception `requests` raised, if that is what it was."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return current
        stack += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        stack += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
    return None


# --- the check at connection time ----------------------------------------------------------------


def _connect(connection: HTTPConnection) -> socket.socket:
    """What urllib3's `_new_conn` does, connecting only to addresses `check` let through."""
    host, port = connection._dns_host, connection.port
    try:
        addresses = check(host, port)
        last: OSError | None = None
        for address in addresses:
            try:
                return urllib3_connection.create_connection(
                    (str(address), port),
                    connection.timeout,
                    source_address=connection.source_address,
                    socket_options=connection.socket_options,
                )
            except OSError as exc:
                last = exc
        raise last or OSError(f"{host} has no address")
    except socket.gaierror as exc:
        raise NameResolutionError(connection.host, connection, exc) from exc
    except TimeoutError as exc:
        message = f"Connection to {connection.host} timed out. (connect timeout={connection.timeout})"
        raise ConnectTimeoutError(connection, message) from exc
    except OSError as exc:
        raise NewConnectionError(connection, f"Failed to establish a new connection: {exc}") from exc


class _PublicHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self)


class _PublicHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self)


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """Direct connections go to public addresses only. Through a proxy the proxy connects (it may
    well sit on the intranet); the check before the request still applies to the target."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def public_session() -> requests.Session:
    """A per-thread session whose connections reach public addresses only."""
    current: requests.Session | None = getattr(_local, "session", None)
    if current is None:
        current = requests.Session()
        current.headers["User-Agent"] = USER_AGENT
        adapter = PublicOnlyAdapter()
        current.mount("http://", adapter)
        current.mount("https://", adapter)
        _local.session = current
    return current
