"""`qsipctl probe register` against real PBX answers replayed from a socket (issue 8).

Every corpus message that answers a REGISTER is sent back by a small replay
server (tests/fixtures/replay.py) on a real 127.0.0.1 socket, adapted only
where a response must echo its request.  The verdict must be what the PBX
meant: a 401 that comes back after our credentials is "wrong-password", a
200 is "ok" (and the binding is removed again), a lone 1xx is "timeout" --
never "network error: unparsable data" for an answer a PBX really sends.
Bare-LF answers also go over TCP, where a framer that only knows CRLF CRLF
used to turn them into a false firewall timeout.
"""

import json

import pytest

from tests.corpus.manifest import Entry, entries
from tests.fixtures.common import run_cli
from tests.fixtures.replay import adapt, replay

CASES = [
    pytest.param(e, transport, id=f"{e.file}-{transport}")
    for e in entries()
    if e.register_verdict != "-"
    for transport in e.replay_transports
]


def probe(port: int, transport: str, timeout: str) -> tuple[int, dict]:
    proc = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{port}", "--transport", transport,
        "--password-env", "QSIPCTL_TEST_PW", "--timeout", timeout, "--format", "json",
        "--bind", "--force",  # the full path: query, bind and unbind (the answers list bindings)
        env={"QSIPCTL_TEST_PW": "not-the-password"},
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)["results"][0]


@pytest.mark.parametrize(("entry", "transport"), CASES)
def test_register_verdict_on_replayed_answer(entry: Entry, transport: str):
    timeout = "1" if entry.register_verdict == "timeout" else "5"
    with replay(entry.data(), transport) as server:
        code, result = probe(server.port, transport, timeout)
    assert result["verdict"] == entry.register_verdict, result["message"]
    assert code == (0 if entry.register_verdict == "ok" else 1)
    assert server.requests and all(r.startswith(b"REGISTER ") for r in server.requests)
    if entry.register_verdict == "ok":
        assert result["unregistered"] is True
        assert b"Expires: 0" in server.requests[-1]
    if entry.register_verdict == "wrong-password":
        assert len(server.requests) == 2 and b"Authorization: Digest" in server.requests[1]


REQUEST = (
    b"REGISTER sip:127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bKours;rport\r\n"
    b"From: <sip:1001@127.0.0.1>;tag=ourtag\r\n"
    b"To: <sip:1001@127.0.0.1>\r\n"
    b"Call-ID: ourcallid\r\n"
    b"CSeq: 7 REGISTER\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_replay_adapts_only_what_a_response_echoes():
    """The fixture itself: one Via (ours, recorded params kept), our ids and tag, the rest kept."""
    recorded = (
        b"SIP/2.0 401 Unauthorized\n"
        b"v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKproxy\n"
        b"VIA: SIP/2.0/UDP 10.0.0.9:5062;received=192.0.2.1;branch=z9hG4bKphone;rport=5062\n"
        b"To: <sip:x@y>;tag=srv\n"
        b"f: <sip:x@y>;tag=theirs\n"
        b"i: theircallid\n"
        b"CSEQ: 1 REGISTER\n"
        b"Server: Soci\xe9t\xe9\n"
        b"Content-Length: 0\n\n"
    )
    assert adapt(recorded, REQUEST) == (
        b"SIP/2.0 401 Unauthorized\n"
        b"v: SIP/2.0/TCP 127.0.0.1:40000;received=192.0.2.1;branch=z9hG4bKours;rport=5062\n"
        b"To: <sip:x@y>;tag=srv\n"
        b"f: <sip:x@y>;tag=ourtag\n"
        b"i: ourcallid\n"
        b"CSEQ: 7 REGISTER\n"
        b"Server: Soci\xe9t\xe9\n"
        b"Content-Length: 0\n\n"
    )
