"""RFC 3263 server location against dnsmasq on loopback, then REGISTER to what it found."""

from __future__ import annotations

import asyncio

import pytest

from qsipctl.net.errors import DnsError
from qsipctl.net.resolve import resolve
from qsipctl.net.transport import TlsSettings
from qsipctl.probes.runner import run_probes
from qsipctl.probes.target import adhoc_target
from qsipctl.site.secrets import Secret
from tests.fixtures.dnsmasq import Dnsmasq
from tests.fixtures.kamailio import Kamailio

pytestmark = pytest.mark.integration


def _resolve(d: Dnsmasq, host: str, port: int | None, transport: str | None, **kw) -> list[str]:
    found = asyncio.run(resolve(host, port, transport, nameserver=d.nameserver, **kw))
    return [str(a) for a in found]


def test_naptr_picks_transport_in_order(sip_dns: Dnsmasq, kamailio: Kamailio) -> None:
    assert _resolve(sip_dns, "pbx.test", None, None) == [
        f"tcp 127.0.0.1:{kamailio.tcp_port}",
        f"udp 127.0.0.1:{kamailio.udp_port}",
    ]


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_srv_for_the_chosen_transport(sip_dns: Dnsmasq, kamailio: Kamailio, transport: str) -> None:
    assert _resolve(sip_dns, "pbx.test", None, transport) == [
        f"{transport} 127.0.0.1:{kamailio.port(transport)}"
    ]


def test_sips_without_sips_naptr_falls_back_to_sips_srv(
    sip_dns: Dnsmasq, kamailio: Kamailio
) -> None:
    assert _resolve(sip_dns, "pbx.test", None, None, secure=True) == [
        f"tls 127.0.0.1:{kamailio.tls_port}"
    ]


def test_sips_follows_a_sips_naptr_to_its_srv(sip_dns: Dnsmasq, kamailio: Kamailio) -> None:
    # tlsfirst.test has no SRV of its own: only its NAPTR (SIPS+D2T) leads to pbx.test's
    assert _resolve(sip_dns, "tlsfirst.test", None, None, secure=True) == [
        f"tls 127.0.0.1:{kamailio.tls_port}"
    ]


def test_explicit_port_skips_srv(sip_dns: Dnsmasq) -> None:
    assert _resolve(sip_dns, "sip1.pbx.test", 5999, "tcp") == ["tcp 127.0.0.1:5999"]


def test_no_srv_means_a_record_and_default_port(sip_dns: Dnsmasq) -> None:
    assert _resolve(sip_dns, "plain.test", None, "tls") == ["tls 127.0.0.1:5061"]


def test_unknown_name_is_dns_error(sip_dns: Dnsmasq) -> None:
    with pytest.raises(DnsError):
        _resolve(sip_dns, "nothere.test", None, "udp")


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_register_by_domain_name(sip_dns: Dnsmasq, kamailio: Kamailio, transport: str) -> None:
    t = adhoc_target(
        "sip:1001@pbx.test",
        transport=transport,
        password=Secret.parse("secret-1001"),
        tls=TlsSettings(str(kamailio.ca.ca_file)),  # the certificate names pbx.test
        nameserver=sip_dns.nameserver,
    )
    [outcome] = run_probes([("register", t)])
    r = outcome.result
    assert r.ok, r.message
    assert r.server == f"127.0.0.1:{kamailio.port(transport)}"


def test_register_dns_failure_verdict(sip_dns: Dnsmasq) -> None:
    t = adhoc_target(
        "sip:1001@nothere.test",
        transport="udp",
        password=Secret.parse("x"),
        nameserver=sip_dns.nameserver,
    )
    [outcome] = run_probes([("register", t)])
    assert (outcome.result.ok, outcome.result.verdict) == (False, "dns")
    assert outcome.result.message.startswith("DNS failure")


def test_tls_certificate_must_name_the_domain_not_the_ip(
    sip_dns: Dnsmasq, kamailio: Kamailio
) -> None:
    # plain.test resolves to 127.0.0.1, which the certificate names; plain.test it does not
    t = adhoc_target(
        f"sip:1001@plain.test:{kamailio.tls_port}",
        transport="tls",
        password=Secret.parse("secret-1001"),
        tls=TlsSettings(str(kamailio.ca.ca_file)),
        nameserver=sip_dns.nameserver,
    )
    [outcome] = run_probes([("register", t)])
    assert (outcome.result.ok, outcome.result.verdict) == (False, "tls-hostname")
    assert "plain.test" in outcome.result.message


def test_tls_chosen_by_naptr_without_verification_is_warned_about(sip_dns: Dnsmasq) -> None:
    t = adhoc_target(
        "sip:1001@tlsfirst.test",
        transport=None,  # NAPTR picks TLS; the warning must not depend on --transport
        password=Secret.parse("secret-1001"),
        tls=TlsSettings(None, verify=False),
        nameserver=sip_dns.nameserver,
    )
    [outcome] = run_probes([("register", t)])
    r = outcome.result
    assert r.transport == "tls"
    assert any("not verified" in w for w in r.warnings), r.warnings
