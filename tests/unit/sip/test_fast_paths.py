"""The str-method fast paths give exactly what the compiled grammar gives.

They exist for start-up time only (a probe's few messages cost less to match
than their patterns cost to compile), so each is held against its rule in
qsipctl.sip.grammar on generated text made of the characters that matter.
"""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from qsipctl.sip import grammar as g
from qsipctl.sip import headers as h
from qsipctl.sip import message as msg
from qsipctl.sip import uri as u
from qsipctl.sip.errors import SipParseError

PIECES = [*'aB1.;=:[]?@<>/"%& \t\n,-é٣²İ', "SIP/2.0/UDP ", "sip:", "SIPS:", "127.0.0.1", ":5060"]
texts = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)

SIP_URI = re.compile(
    r"(?P<scheme>[Ss][Ii][Pp][Ss]?):(?:(?P<userinfo>[^@]*)@)?"
    r"(?P<hostport>[^;?]*)(?P<params>;[^?]*)?(?:\?(?P<headers>.*))?",
    re.S,
)
HOSTPORT = re.compile(f"(?P<host>{g.HOST_CANDIDATE})(?::(?P<port>[0-9]*))?")


def test_character_sets_match_the_grammar():
    chars = [chr(c) for c in range(0x250)]
    assert set(g.TOKEN_STR) == {c for c in chars if re.fullmatch(g.TOKEN, c)}
    assert set(g.WORD_STR) == {c for c in chars if re.fullmatch(g.WORD, c)}


@settings(max_examples=1000)
@given(texts)
def test_predicates(s):
    assert g.is_token(s) == bool(g.token_re.fullmatch(s))
    assert g.is_digits(s) == bool(g.digits_re.fullmatch(s))
    assert g.is_ipv4(s) == bool(g.ipv4_re.fullmatch(s))
    assert g.is_callid(s) == bool(g.callid_re.fullmatch(s))
    assert u._paramchars(s) == bool(g.pname_re.fullmatch(s))


@settings(max_examples=1000)
@given(texts)
def test_uri_pieces(s):
    m = SIP_URI.fullmatch(s)
    want = None if m is None else (m["scheme"].lower(), *m.group(2, 3, 4, 5))
    assert u._split_uri(s) == want
    m = HOSTPORT.fullmatch(s)
    assert u._split_hostport(s) == (None if m is None else m.group("host", "port"))


def _params_by_grammar(text):
    params, seen, pos = {}, set(), 0
    while pos < len(text):
        m = g.generic_param_re.match(text, pos)
        if m is None or m[1].lower() in seen:
            return None
        seen.add(m[1].lower())
        params[m[1]] = m[2]
        pos = h._skip_sws(text, m.end())
    return params


@settings(max_examples=1000)
@given(texts)
def test_header_pieces(s):
    fast = h._simple_params(s)
    assert fast is None or fast == _params_by_grammar(s)
    via = h._simple_via(s)
    if via is not None:
        m = g.via_re.match(s)
        assert m is not None
        assert via == (*m.group("name", "version", "transport", "host", "port"), m.end())
    line = s.rstrip(" \t")
    m = g.header_line_re.fullmatch(line)
    want = None if m is None else (h.canonical_name(m[1]), m[2].strip(" \t"))
    try:
        got = msg._split_header_line(line, 1)
    except SipParseError:
        got = None
    assert got == want


@given(texts, texts)
def test_bracketed_name_addr_and_lists(uri, rest):
    text = f"<{uri}>{rest}"
    try:
        got = h.split_name_addr(text)
    except SipParseError:
        got = None
    if got is not None and "<" not in uri and ">" not in uri:
        m = g.name_addr_re.match(text.strip(" \t"))
        assert m is not None and m["uri"] == got.uri and got.display_name is None
    plain = f"{uri},{rest}".replace('"', "").replace("<", "")
    pos, want = 0, []
    while True:
        m = g.list_element_re.match(plain, pos)
        want.append(m[0].strip(" \t"))
        if m.end() == len(plain):
            break
        pos = m.end() + 1
    assert h.split_list(plain) == want


AUTH_PIECES = [*'a1=,"\\ \t\r\n;é', "Digest ", 'realm="x"', "qop=auth", "tok68==", "==", '\\"']


@settings(max_examples=1000)
@given(st.lists(st.sampled_from(AUTH_PIECES), max_size=10).map("".join))
def test_auth_lexer(text):
    from qsipctl.sip import digest

    rules = re.compile(digest._LEXER_RULES, re.VERBOSE | re.DOTALL)
    want, pos = [], 0
    while pos < len(text):
        m = rules.match(text, pos)
        if m is None:
            want = None
            break
        if m.lastgroup != "ws":
            want.append((m.lastgroup, m.group()))
        pos = m.end()
    fast = digest._lex_simple(text)
    assert fast is None or fast == want
    if want is None:
        assert fast is None


def test_a_usual_challenge_takes_the_fast_path():
    from qsipctl.sip import digest

    value = 'Digest realm="127.0.0.1", nonce="Z2l2ZW4=", qop="auth", algorithm=MD5'
    assert digest._lex_simple(value) == digest._lex(value)
    assert digest._lex_simple(value) is not None
    assert digest._lex_simple("Bearer abc==") == [("token", "Bearer"), ("token68", "abc==")]
