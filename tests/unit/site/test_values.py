import re

import pytest

from qsipctl.site import values as v
from qsipctl.site.model import HostPort


@pytest.mark.parametrize(
    "text,expected",
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:DB8::1]", "2001:db8::1"),
        ("pbx.example.net", "pbx.example.net"),
        ("pbx.example.net.", "pbx.example.net."),
    ],
)
def test_hosts_accepted(text, expected):
    assert v.as_host(text) == expected


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("192.0.2.256", "not a valid IPv4"),
        ("10.1", "not a valid IPv4"),
        ("2001:db8::g", "not a valid IPv6"),
        ("-bad.example", "neither an IP address nor a valid host name"),
        ("a b", "neither"),
    ],
)
def test_hosts_rejected(text, fragment):
    with pytest.raises(v.FieldError, match=fragment):
        v.as_host(text)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("pbx:5080", HostPort("pbx", 5080)),
        ("pbx", HostPort("pbx", None)),
        ("[2001:db8::1]:5061", HostPort("2001:db8::1", 5061)),
        ("2001:db8::1", HostPort("2001:db8::1", None)),
        ({"host": "192.0.2.1", "port": 5062}, HostPort("192.0.2.1", 5062)),
    ],
)
def test_hostport(text, expected):
    assert v.as_hostport(text) == expected


def test_hostport_rejects_sip_uri_and_bad_port():
    with pytest.raises(v.FieldError, match="SIP URI"):
        v.as_hostport("sip:pbx.example.net")
    with pytest.raises(v.FieldError, match="out of range"):
        v.as_hostport("pbx:0")
    with pytest.raises(v.FieldError, match="port"):
        v.as_hostport("pbx:http")


def test_hostport_str_brackets_ipv6():
    assert str(HostPort("2001:db8::1", 5060)) == "[2001:db8::1]:5060"


def test_sip_port_outside_rtp_range():
    assert v.as_sip_port(5060) == 5060
    assert v.as_sip_port(16383) == 16383
    for bad in (16384, 20000, 32768):
        with pytest.raises(v.FieldError, match="RTP range 16384-32768"):
            v.as_sip_port(bad)


def test_ports_bounds_and_types():
    assert v.as_port(1) == 1 and v.as_port(65535) == 65535
    for bad in (0, 65536, -1, True, 5.5, "x"):
        with pytest.raises(v.FieldError):
            v.as_port(bad)


def test_codec_names_normalised_and_order_kept():
    assert v.as_codecs(["G.722", "G.711 µ-law", "alaw"]) == ("G722", "PCMU", "PCMA")
    assert v.as_codecs("pcmu, g722") == ("PCMU", "G722")


@pytest.mark.parametrize(
    "codecs,fragment",
    [
        (["G.729"], "not offered by Q-SYS"),
        (["opus"], "not offered by Q-SYS"),
        (["speexy"], "not offered"),
        (["foo"], "unknown codec"),
        (["PCMU", "ulaw"], "listed twice"),
        ([], "non-empty list"),
    ],
)
def test_codecs_rejected(codecs, fragment):
    with pytest.raises(v.FieldError, match=fragment):
        v.as_codecs(codecs)


def test_dtmf_modes():
    assert v.as_dtmf_mode("RFC2833") == "rfc2833"
    assert v.as_dtmf_mode("rfc4733") == "rfc2833"
    assert v.as_dtmf_mode("SIP INFO") == "sip-info"
    with pytest.raises(v.FieldError, match="out of band only"):
        v.as_dtmf_mode("inband")
    with pytest.raises(v.FieldError, match="unknown DTMF mode"):
        v.as_dtmf_mode("auto")


def test_networks():
    assert v.as_network("192.0.2.0/24") == "192.0.2.0/24"
    assert v.as_network("2001:db8::/32") == "2001:db8::/32"
    with pytest.raises(v.FieldError, match=re.escape("did you mean '192.0.2.0/24'")):
        v.as_network("192.0.2.7/24")
    with pytest.raises(v.FieldError, match="not a valid"):
        v.as_network("192.0.2.0/33")


def test_rtp_range():
    assert v.as_rtp_range([10000, 20000]) == (10000, 20000)
    assert v.as_rtp_range("9000-10999") == (9000, 10999)
    with pytest.raises(v.FieldError, match="backwards"):
        v.as_rtp_range([2, 1])


def test_did_you_mean_knows_other_vendors_words():
    from qsipctl.site.suggest import did_you_mean

    keys = ["username", "cid_name", "codecs", "registration_timeout"]
    assert did_you_mean("extension", keys) == " (did you mean 'username'?)"
    assert did_you_mean("display_name", keys) == " (did you mean 'cid_name'?)"
    assert did_you_mean("registraton_timeout", keys) == " (did you mean 'registration_timeout'?)"
    assert did_you_mean("zzz", keys) == ""


@pytest.mark.parametrize("text", ["[2001:db8::1]:", "pbx.example.net:", "[::1]:x"])
def test_hostport_empty_or_bad_port_after_colon_is_an_error(text):
    with pytest.raises(v.FieldError, match="port"):
        v.as_hostport(text)


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("G.711 \u03bc-law", "PCMU"),  # Greek small mu, as most keyboards and web pages write it
        ("G.711 \u00b5-law", "PCMU"),  # micro sign, as QSC's help writes it
        ("g711 u-law", "PCMU"),
        ("PCMU/8000", "PCMU"),
        ("PCMA/8000", "PCMA"),
        ("G722/8000", "G722"),
    ],
)
def test_codec_spellings_engineers_copy(text, codec):
    assert v.as_codec(text) == codec


def test_empty_codec_list_says_empty():
    with pytest.raises(v.FieldError, match="empty list"):
        v.as_codecs([])


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("2001:db8::1:5060", "[2001:db8::1]:5060"),
        ("2001:db8::5061", "[2001:db8::]:5061"),
        ("fd00::7:5080", "[fd00::7]:5080"),
        ("2001:db8::1:5160", "[2001:db8::1]:5160"),
    ],
)
def test_ipv6_with_a_sip_port_in_the_last_group_is_hinted(text, written):
    hint = v.ipv6_port_hint(text, v.SIP_PORTS)
    assert hint is not None and f"write '{written}'" in hint
    assert v.as_hostport(text).port is None  # still a legal address, read as one


@pytest.mark.parametrize(
    "text", ["2001:db8::1", "2001:db8::1:5065", "[2001:db8::1]:5060", "192.0.2.5:5060", "pbx"]
)
def test_no_ipv6_port_hint_otherwise(text):
    assert v.ipv6_port_hint(text, v.SIP_PORTS) is None
