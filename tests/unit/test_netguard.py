"""The address rule: which addresses content may make the service connect to, checked before a
request and again when the socket connects."""

from __future__ import annotations

import ipaddress
import socket

import pytest
import requests

from distributor import netguard
from tests.fakes.server import FakeServer, Reply


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.251",  # multicast
        "239.255.255.250",
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped forms
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2001:db8::1",  # documentation
    ],
)
def test_internal_and_special_addresses_are_not_public(address: str) -> None:
    assert not netguard.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"]
)
def test_global_addresses_are_public(address: str) -> None:
    assert netguard.is_public(ipaddress.ip_address(address))


def test_check_refuses_a_host_with_any_internal_address(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {"mixed.example.vn": ["93.184.216.34", "10.0.0.7"], "public.example.vn": ["93.184.216.34"]}
    monkeypatch.setattr(netguard, "resolve", lambda host, port: [ipaddress.ip_address(a) for a in names[host]])
    assert netguard.check("public.example.vn", 80) == [ipaddress.ip_address("93.184.216.34")]
    with pytest.raises(
        netguard.AddressRefused, match=r"mixed\.example\.vn resolves to the non-public address 10\.0\.0\.7$"
    ):
        netguard.check("mixed.example.vn", 80)
    assert netguard.on_private_network("mixed.example.vn", 80)
    assert not netguard.on_private_network("public.example.vn", 80)


def test_literals_resolve_without_dns() -> None:
    assert netguard.resolve("127.0.0.1", 80) == [ipaddress.ip_address("127.0.0.1")]
    assert netguard.resolve("[::1]", 80) == [ipaddress.ip_address("::1")]
    assert netguard.on_private_network("localhost", 80)
    assert not netguard.on_private_network("name.invalid", 80)  # unresolvable: judged by its request


def test_the_public_session_refuses_at_connection_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that passed an earlier check but now resolves to an internal address (DNS
    rebinding) is refused when the socket connects: the internal server sees nothing."""
    with FakeServer(host="127.0.0.2") as internal:
        internal.add("GET", "/admin", lambda request: Reply(200, "secret"))
        port = int(internal.url.rsplit(":", 1)[1])
        monkeypatch.setattr(netguard, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.2")])
        with pytest.raises(requests.exceptions.ConnectionError) as caught:
            netguard.public_session().get(f"http://rebind.example.vn:{port}/admin", timeout=5)
        refusal = netguard.refusal(caught.value)
        assert refusal is not None and str(refusal.address) == "127.0.0.2"
        assert internal.requests == []


def test_the_public_session_connects_to_what_the_check_let_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection goes to the very address that was checked (here a stand-in for a public one)."""
    with FakeServer() as site:
        site.add("GET", "/tin", lambda request: Reply(200, "ok"))
        port = int(site.url.rsplit(":", 1)[1])
        real = netguard.is_public
        monkeypatch.setattr(netguard, "is_public", lambda a: a == ipaddress.ip_address("127.0.0.1") or real(a))
        monkeypatch.setattr(netguard, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
        answer = netguard.public_session().get(f"http://portal.example.gov.vn:{port}/tin", timeout=5)
        assert answer.text == "ok"
        assert site.requests[0].header("Host") == f"portal.example.gov.vn:{port}"


def test_an_unresolvable_name_is_a_connection_error_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(host: str, port: int) -> list[netguard.IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(netguard, "resolve", fail)
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        netguard.public_session().get("http://nowhere.example.vn/", timeout=5)
    assert netguard.refusal(caught.value) is None
