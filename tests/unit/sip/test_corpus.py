"""Real SIP messages (tests/corpus): each is accepted or refused as its manifest says.

The corpus is what PBXs put on the wire (captures and traces from public
sources, see tests/corpus/README.md); "accept" means the parser reads the
message *and* the fields a probe's verdict rests on (Call-ID, CSeq, top Via,
From/To tags), while headers nobody reads are left as text.  Rows marked
``derived`` carry one quirk issue 8 names, written into a real message.
"""

import hashlib

import pytest

from qsipctl.sip.errors import SipParseError
from qsipctl.sip.headers import parse_name_addr
from qsipctl.sip.message import Response, StreamParser, parse_message
from tests.corpus.manifest import CORPUS, MESSAGES, Entry, entries

ENTRIES = entries()


def test_manifest_lists_every_file_and_the_bytes_are_unchanged():
    """The files are the recorded octets: no checkout may convert their line ends."""
    assert {e.file for e in ENTRIES} == {p.name for p in MESSAGES.glob("*.sip")}
    sums = dict(
        reversed(line.split(maxsplit=1))
        for line in (CORPUS / "SHA256SUMS").read_text().splitlines()
    )
    for e in ENTRIES:
        assert hashlib.sha256(e.data()).hexdigest() == sums[e.file], e.file
    real = [e for e in ENTRIES if e.origin != "derived"]
    assert len(real) >= 60


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.file for e in ENTRIES])
def test_corpus_message(entry: Entry):
    data = entry.data()
    if entry.parse == "reject":
        with pytest.raises(SipParseError):
            parse_message(data)
        return
    msg = parse_message(data)
    assert msg.call_id and msg.cseq[1]
    assert msg.top_via.branch
    _ = (msg.from_tag, msg.to_tag)
    # the same octets over a stream (TCP/TLS) give the same message when framed
    if msg.headers.get("Content-Length") is not None:
        assert StreamParser().feed(data) == [msg]


def _message(name: str) -> Response:
    msg = parse_message((MESSAGES / name).read_bytes())
    assert isinstance(msg, Response)
    return msg


def test_quirks_read_as_a_production_stack_reads_them():
    latin1 = _message("derived-latin1-display-name.sip")
    assert parse_name_addr(latin1.headers.get("From")).display_name == "Salle Réunion 1001"
    unquoted = _message("derived-unquoted-utf8-display-name.sip")
    assert parse_name_addr(unquoted.headers.get("From")).display_name == "Jörg Müller, Empfang"
    allow = _message("derived-allow-trailing-comma.sip")
    assert allow.headers.get_all("Allow")[-1] == "MESSAGE"
    assert allow.headers.get_all("Supported") == ["replaces", "timer"]
    hosts = {
        name: [parse_name_addr(c).sip_uri() for c in _message(name).headers.get_all("Contact")][-1]
        for name in (
            "derived-contact-underscore-digit-label-params.sip",
            "derived-contact-ipv6-zone-id.sip",
            "derived-contact-sip-space-host.sip",
            "derived-contact-three-colons.sip",
        )
    }
    odd = hosts["derived-contact-underscore-digit-label-params.sip"]
    assert (odd.host, odd.params) == ("core_lobby.site.7", {"transport": "udp", "x": ""})
    assert hosts["derived-contact-ipv6-zone-id.sip"].host == "fe80::1%25eth0"
    assert hosts["derived-contact-sip-space-host.sip"].host == "198.51.100.23"
    assert hosts["derived-contact-three-colons.sip"].host == "2001:db8:::192.0.2.1"
    for name in ("derived-via-received-bracketed-ipv6.sip", "derived-via-received-bare-ipv6.sip"):
        assert _message(name).top_via.received == "2001:db8::9:255"
    assert _message("derived-bare-lf-line-ends.sip") == _message("sip-ipv4-tcp-retrans-f0035.sip")
    server = _message("derived-401-latin1-server.sip").headers.get("Server")
    assert server.startswith("Société FPBX")


def test_teams_uppercase_header_names_are_read():
    msg = _message("teams-pstnhub-200-options-jambonz-docs.sip")
    assert msg.cseq == (23765299, "OPTIONS") and msg.from_tag == "SX7B39veap93c"
    assert msg.headers.get("Server").startswith("Microsoft.PSTNHub.SIPProxy")
