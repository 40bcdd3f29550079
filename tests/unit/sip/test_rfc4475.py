"""RFC 4475 torture messages: each behaves as the RFC says.

The bytes are the RFC's own archive (REPO/../shared/vectors/rfc4475, see its
README).  Valid messages must parse *and* carry what the RFC says they
contain; invalid ones must raise SipParseError naming the problem.

Decisions where the RFC lets an element choose: strict on what matches a
response to its request and frames it (start line, Via, CSeq, Call-ID,
From/To tags, Content-Length; the authentication headers where digest.py
reads them), liberal on everything else, parsed only when read (issue 8,
"Accept what real PBXs send"):

* lwsstart (§3.1.2.9), trws (§3.1.2.10): rejected, not accepted liberally.
* escruri (§3.1.2.11): rejected (headers are not allowed in a Request-URI).
* baddate (§3.1.2.12): accepted, Date ignored as the RFC allows: this stack
  never uses Date, and a PBX's odd time zone must not fail a registration
  probe; the value is kept as written.
* regbadct (§3.1.2.13): accepted since issue 8 (was rejected): Contact is
  parsed when read, and reading this one raises SipParseError ("must be
  enclosed in <>"), which is where a registrar answers 400.
* badaspec (§3.1.2.14): accepted since issue 8 (was rejected): the spaces
  inside ``< sip:... >`` are dropped, as the RFC allows a liberal element to.
* quotbal (§3.1.2.6): rejected; no closing quote is inferred.
* mismatch02 (§3.1.2.18): rejected with status 400 (the RFC also allows it).
* multi01 (§3.3.8): rejected at parse time with 400 (duplicate Call-ID,
  CSeq, From, To, Max-Forwards are never resolved by guessing).
* mcl01 (§3.3.9): rejected (two Content-Length values are a framing error).
* insuf (§3.3.1): parses; reading ``call_id``/``from_tag``/``to_tag``
  raises SipParseError, which is where a UAS would decide on its 400.
* lwsdisp (§3.1.1.6): accepted, as the RFC asks, despite the ABNF.
* baddn: the archive copy never ends its header section and is rejected for
  that; ``variants/baddn.dat`` is accepted since issue 8 (was rejected): an
  unquoted display name with a comma is read as the RFC lets a liberal
  element do (real PBXs send unquoted, even non-ASCII, display names).
"""

import csv
import hashlib
from pathlib import Path

import pytest

from qsipctl.sip.errors import SipParseError
from qsipctl.sip.headers import parse_name_addr, parse_via
from qsipctl.sip.message import Request, Response, parse_message
from qsipctl.sip.uri import parse_uri
from tests.unit.sip.vectors import shared_vectors


def vectors() -> Path:
    return shared_vectors() / "rfc4475"


def index() -> dict[str, dict[str, str]]:
    with (vectors() / "INDEX.tsv").open(encoding="utf-8") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


def load(name: str) -> bytes:
    return (vectors() / name).read_bytes()


def all_vias(m):
    """Every via-parm, top first (a Via line may hold several)."""
    return [parse_via(v) for v in m.headers.get_all("Via")]


# --- valid (§3.1.1) and valid-semantic (§3.2-3.4): field checks ---------------


def check_wsinv(m):
    assert (m.method, m.uri) == ("INVITE", "sip:vivekg@chair-dnrc.example.com;unknownparam")
    assert parse_uri(m.uri).params == {"unknownparam": None}
    assert m.to_tag == "1918181833n"
    frm = parse_name_addr(m.headers.get("From"))
    assert frm.display_name == 'J Rosenberg \\"'
    assert frm.params["tag"] == "98asjd8"
    assert m.headers.get("Max-Forwards") == "0068"
    assert m.cseq == (9, "INVITE")
    vias = all_vias(m)
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    contact = parse_name_addr(m.headers.get("Contact"))
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    route = parse_name_addr(m.headers.get("Route"))
    assert route.sip_uri().params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n")


def check_intmeth(m):
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.method == method and m.cseq == (139122385, method)
    ruri = parse_uri(m.uri)
    assert ruri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert ruri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    to = parse_name_addr(m.headers.get("To"))
    assert to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert to.sip_uri().user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    frm = parse_name_addr(m.headers.get("From"))
    assert frm.display_name == "token1~` token2'+_ token3*%!.-"
    assert frm.params["fromParam''~+*_!.-%"] == '"работающий"'
    assert m.from_tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def check_esc01(m):
    ruri = parse_uri(m.uri)
    assert (ruri.user, ruri.host) == ("sips:user@example.com", "example.net")
    assert parse_name_addr(m.headers.get("To")).sip_uri().user == "user"
    assert parse_name_addr(m.headers.get("From")).sip_uri().user == "I have spaces"
    contact = parse_name_addr(m.headers.get("Contact"))
    assert contact.sip_uri().user == "caller"
    assert contact.sip_uri().params == {"lr": None, "name": "value%41"}  # decoded once only
    assert m.headers.get("Content-Type") == "application/sdp"


def check_escnull(m):
    assert parse_name_addr(m.headers.get("To")).sip_uri().user == "null-\x00-null"
    users = [parse_name_addr(c).sip_uri().user for c in m.headers.get_all("Contact")]
    assert users == ["\x00", "\x00\x00"]


def check_esc02(m):
    assert m.method == "RE%47IST%45R" != "REGISTER"
    assert parse_name_addr(m.headers.get("To")).display_name == "%Z%45"
    assert len(m.headers.get_all("Contact")) == 2
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def check_lwsdisp(m):
    frm = parse_name_addr(m.headers.get("From"))
    assert (frm.display_name, frm.sip_uri().user, frm.params["tag"]) == ("caller", "caller", "323")


def check_longreq(m):
    vias = all_vias(m)
    assert len(vias) == 34  # sip33 ... sip1 and host.example.com in the archive
    assert vias[0].host == "sip33.example.com"
    last = vias[-1]
    assert last.received == "192.0.2.5"
    assert last.branch.startswith("verylong") and last.branch.endswith("branchvalue")
    to = parse_name_addr(m.headers.get("To"))
    assert to.display_name.startswith("I have a user name of extremeextreme")
    assert to.sip_uri().port == 6000
    assert m.call_id.startswith("longreq.onereallyreally") and m.call_id.endswith("longcallid")
    assert m.from_tag.startswith("1298298298") and m.from_tag.endswith("2424")
    assert len(m.body) == 150


def check_dblreq(m):
    assert (m.method, m.body) == ("REGISTER", b"")
    assert m.cseq[1] == "REGISTER"


def check_semiuri(m):
    ruri = parse_uri(m.uri)
    assert (ruri.user, ruri.host, ruri.params) == ("user;par=u@example.net", "example.com", {})
    accept = m.headers.get_all("Accept")
    assert accept[0] == "application/sdp" and accept[-1] == "message/sipfrag"
    assert len(accept) == 6


def check_transports(m):
    assert [v.transport for v in all_vias(m)] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def check_mpart01(m):
    assert m.method == "MESSAGE"
    assert len(m.body) == 553
    assert b"\x00" in m.body and b"\r" in m.body.replace(b"\r\n", b"")
    assert m.headers.get("Content-Type").startswith("multipart/mixed")
    assert m.top_via.rport is True


def check_unreason(m):
    assert isinstance(m, Response) and m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


def check_noreason(m):
    assert isinstance(m, Response) and (m.status, m.reason) == (100, "")


def check_baddate(m):
    assert m.method == "INVITE"
    assert m.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def check_badbranch(m):
    assert m.top_via.branch == "z9hG4bK"


def check_insuf(m):
    assert "Call-ID" not in m.headers and "From" not in m.headers and "To" not in m.headers
    for attr in ("call_id", "from_tag", "to_tag"):
        with pytest.raises(SipParseError, match="missing"):
            getattr(m, attr)


def check_unkscm(m):
    assert m.uri == "nobodyKnowsThisScheme:totallyopaquecontent"
    with pytest.raises(SipParseError):
        parse_uri(m.uri)


def check_novelsc(m):
    assert m.uri == "soap.beep://192.0.2.103:3002"


def check_unksm2(m):
    assert parse_name_addr(m.headers.get("To")).uri == "isbn:2983792873"
    assert parse_name_addr(m.headers.get("From")).uri == "http://www.example.com"
    assert m.from_tag == "3234233"
    assert parse_name_addr(m.headers.get("Contact")).uri == "name:John_Smith"
    with pytest.raises(SipParseError, match="is not a sip: or sips: URI"):
        parse_name_addr(m.headers.get("To")).sip_uri()


def check_bext01(m):
    assert m.headers.get_all("Require") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert m.headers.get_all("Proxy-Require") == [
        "noProxiesSupportThis",
        "norDoAnyProxiesSupportThis",
    ]


def check_invut(m):
    assert m.headers.get("Content-Type") == "application/unknownformat"
    assert m.body.startswith(b"<audio>") and len(m.body) == 40


def check_regaut01(m):
    assert m.headers.get("Authorization") == "NoOneKnowsThisScheme opaque-data=here"


def check_bcast(m):
    assert [v.host for v in all_vias(m)] == ["192.0.2.198", "255.255.255.255"]


def check_zeromf(m):
    assert m.headers.get("Max-Forwards") == "0"


def check_cparam01(m):
    contact = parse_name_addr(m.headers.get("Contact"))
    assert contact.sip_uri().params == {}
    assert contact.params == {"unknownparam": None}


def check_cparam02(m):
    contact = parse_name_addr(m.headers.get("Contact"))
    assert contact.sip_uri().params == {"unknownparam": None}
    assert contact.params == {}


def check_regescrt(m):
    uri = parse_name_addr(m.headers.get("Contact")).sip_uri()
    assert uri.headers == {"Route": "<sip:sip.example.com>"}
    assert str(uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


def check_sdp01(m):
    assert m.headers.get_all("Accept") == ["text/nobodyKnowsThis"]
    assert m.headers.get("Content-Type") == "application/sdp"


def check_badaspec(m):
    to = parse_name_addr(m.headers.get("To"))
    assert (to.display_name, to.uri) == ("Watson, Thomas", "sip:t.watson@example.org")
    assert m.from_tag == "433423"


def check_regbadct(m):
    assert m.call_id == "regbadct.k345asrl3fdbv@10.0.0.1"
    with pytest.raises(SipParseError, match="must be enclosed in <>"):
        parse_name_addr(m.headers.get("Contact"))


def check_inv2543(m):
    raw = load("inv2543.dat")
    assert m.body == raw[raw.index(b"\r\n\r\n") + 4 :] and m.body.startswith(b"v=0")
    assert "Content-Length" not in m.headers and "Max-Forwards" not in m.headers
    assert m.top_via.branch is None
    assert m.from_tag is None
    to = parse_name_addr(m.headers.get("To"))
    assert to.params == {"user": "phone"} and to.sip_uri().params == {}


CHECKS = {
    name.removeprefix("check_") + ".dat": f
    for name, f in globals().items()
    if name.startswith("check_")
}

# --- invalid: what the error must say, and the status it suggests -----------------

REJECT = {
    "badinv01.dat": ("line 7: Via: .*empty list element", 400),
    "clerr.dat": ("Content-Length 9999 is larger than the 154 body octets", 400),
    "ncl.dat": ("Content-Length: '-999': expected a non-negative integer", 400),
    "scalar02.dat": ("CSeq: '36893488147419103232': larger than 4294967295", 400),
    "scalarlg.dat": ("CSeq: '9292394834772304023312': larger than 4294967295", 400),
    "quotbal.dat": ("To: .*unterminated quoted string", 400),
    "ltgtruri.dat": ("Request-URI '<sip:user@example.com>' is not a valid URI", 400),
    "lwsruri.dat": ("Request-Line .*expected 'METHOD SP Request-URI SP SIP/2.0'", 400),
    "lwsstart.dat": ("Request-Line 'INVITE  sip", 400),
    "trws.dat": ("Request-Line .*SIP/2.0  '", 400),
    "escruri.dat": ("Request-URI .*headers .* are not allowed", 400),
    "baddn.dat": ("header section does not end with an empty line", 400),
    "badvers.dat": ("unsupported SIP version 'SIP/7.0'", 505),
    "mismatch01.dat": ("CSeq method 'INVITE' does not match the 'OPTIONS' request", 400),
    "mismatch02.dat": ("CSeq method 'INVITE' does not match the 'NEWMETHOD' request", 400),
    "bigcode.dat": ("status code must be 3 digits", 400),
    "multi01.dat": ("line 7: CSeq header appears again", 400),
    "mcl01.dat": ("line 9: Content-Length header appears again", 400),
    "extra/test.dat": ("Request-Line 'INVITE sip:alan@jasomi.com'", 400),
}


# The 49 messages of INDEX.tsv, named here so that collecting needs no files.
MESSAGES = sorted(name for name in {*CHECKS, *REJECT} if "/" not in name)


def test_every_indexed_message_has_a_decision():
    """A vector added to INDEX.tsv without a decision here must fail, not be skipped."""
    files = set(index())
    assert files == {p.name for p in vectors().glob("*.dat")} == set(MESSAGES)
    assert len(files) == 49
    assert files <= set(CHECKS) | set(REJECT)


def test_vector_bytes_match_sha256sums():
    """Guards against line-ending conversion in a checkout (the CRLFs are the test)."""
    for line in (vectors() / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256(load(name.lstrip("*"))).hexdigest() == digest, name


@pytest.mark.parametrize("name", MESSAGES)
def test_rfc4475_message(name):
    row = index()[name]
    if name in REJECT:
        assert row["expected"] != "valid", "a valid RFC 4475 message must not be rejected"
        expect_rejected(name)
    else:
        msg = parse_message(load(name))
        assert isinstance(msg, Request | Response)
        CHECKS[name](msg)


def test_rfc4475_extra_files():
    expect_rejected("extra/test.dat")
    msg = parse_message(load("variants/baddn.dat"))
    frm, to = (parse_name_addr(msg.headers.get(h)) for h in ("From", "To"))
    assert (frm.display_name, frm.params["tag"], to.display_name) == (
        "Bell, Alexander",
        "43",
        "Watson, Thomas",
    )


def expect_rejected(name):
    pattern, status = REJECT[name]
    with pytest.raises(SipParseError, match=pattern) as info:
        parse_message(load(name))
    assert info.value.status == status


@pytest.mark.parametrize("name", sorted(CHECKS), ids=sorted(CHECKS))
def test_valid_messages_survive_serialize_and_reparse(name):
    """What we parsed we can write back, and it parses to the same message."""
    msg = parse_message(load(name))
    again = parse_message(msg.to_bytes())
    assert again == msg
    assert [str(v) for v in all_vias(again)] == [
        str(parse_via(v)) for v in msg.headers.get_all("Via")
    ]
