"""RFC 3261 §25 ABNF, written once as named regular expressions.

Why one module: the h11 lesson.  When the grammar lives in one place, every
parser (URI, header, message) checks the same rules, and a reviewer can hold
each pattern against the RFC's ABNF line by line.  The names below are the
ABNF rule names.

Two conventions keep the patterns safe on hostile input:

* Header values are matched *after* unfolding (RFC 3261 §7.3.1: a CRLF
  followed by whitespace is one SP), so ``LWS`` and ``SWS`` here are plain
  runs of SP/HTAB.
* Every repetition is over disjoint alternatives (no ``(a|a)*`` shapes), so a
  failing match costs linear time, never exponential backtracking.
"""

from __future__ import annotations

import re

# --- core rules (RFC 3261 §25.1) -------------------------------------------
ALPHANUM = "A-Za-z0-9"
LWS = r"[ \t]+"
SWS = r"[ \t]*"
ESCAPED = r"%[0-9A-Fa-f]{2}"
MARK = r"\-_.!~*'()"
UNRESERVED = ALPHANUM + MARK
RESERVED = r";/?:@&=+$,"

TOKEN_CHARS = ALPHANUM + r"\-.!%*_+`'~"
TOKEN = f"[{TOKEN_CHARS}]+"
WORD = f'[{TOKEN_CHARS}()<>:\\\\"/\\[\\]?{{}}]+'

# qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII;
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
QDTEXT = r"[^\"\\\x00-\x08\x0a-\x1f\x7f]"
QUOTED_PAIR = r"\\[\x00-\x09\x0b\x0c\x0e-\x7f]"
QUOTED_STRING = f'"(?:{QDTEXT}|{QUOTED_PAIR})*"'

# --- hosts (RFC 3261 §25.1 hostport) ---------------------------------------
DOMAINLABEL = r"[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*"
TOPLABEL = r"[A-Za-z][A-Za-z0-9]*(?:-+[A-Za-z0-9]+)*"
HOSTNAME = f"(?:{DOMAINLABEL}\\.)*{TOPLABEL}\\.?"
IPV4ADDRESS = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
# The first ":" is pinned (no ":" before it), so a failed match is linear.
IPV6ADDRESS = r"[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"
IPV6REFERENCE = f"\\[{IPV6ADDRESS}\\]"
HOST = f"(?:{HOSTNAME}|{IPV4ADDRESS}|{IPV6REFERENCE})"
PORT = r"[0-9]+"

# --- SIP-URI pieces (RFC 3261 §19.1.1, §25.1) -------------------------------
USER = f"(?:[{UNRESERVED}&=+$,;?/]|{ESCAPED})+"
PASSWORD = f"(?:[{UNRESERVED}&=+$,]|{ESCAPED})*"
PARAMCHAR = f"(?:[{UNRESERVED}\\[\\]/:&+$]|{ESCAPED})"
HNV = f"(?:[{UNRESERVED}\\[\\]/?:+$]|{ESCAPED})"
URIC = f"(?:[{UNRESERVED}{RESERVED}]|{ESCAPED})"
SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
ABSOLUTE_URI = f"{SCHEME}:{URIC}+"

# --- header-level rules ------------------------------------------------------
HEADER_NAME = TOKEN
METHOD = TOKEN
# gen-value = token / host / quoted-string; Via received and maddr also carry
# bare IPv6 addresses (RFC 3261 via-received), tried first since "2001" is a token.
GEN_VALUE = f"(?:{IPV6ADDRESS}|{TOKEN}|{IPV6REFERENCE}|{QUOTED_STRING})"
CALLID = f"{WORD}(?:@{WORD})?"
SIP_VERSION = r"[Ss][Ii][Pp]/[0-9]+\.[0-9]+"
WKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
RFC1123_DATE = f"{WKDAY}, [0-9]{{2}} {MONTH} [0-9]{{4}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}} GMT"


# Where a host ends, so it can be cut out cheaply and then checked against
# host_re (one compiled copy of the host grammar instead of one per user).
HOST_CANDIDATE = r"\[[^\]]*\]|[^ \t;:,\[\]?]+"

# The compiled forms the parsers use, by name.  Each is compiled on first use
# (PEP 562 module ``__getattr__``): compiling all of them costs a few
# milliseconds, which every ``qsipctl`` command that imports the SIP stack
# would pay whether or not its messages need a given rule.  All are used with
# fullmatch() unless the comment says match() (a prefix) or search().
_LAZY: dict[str, tuple[str, int]] = {
    "token_re": (TOKEN, 0),
    "method_re": (TOKEN, 0),
    "callid_re": (CALLID, 0),
    "host_re": (HOST, 0),
    "ipv4_re": (IPV4ADDRESS, 0),
    "user_re": (USER, 0),
    "pname_re": (f"{PARAMCHAR}+", 0),
    "pvalue_re": (f"{PARAMCHAR}+", 0),
    "sip_version_re": (SIP_VERSION, 0),
    "quoted_pair_re": (r"\\(.)", re.S),  # sub()
    "escaped_re": (ESCAPED, 0),  # sub()
    # "Name: value" after unfolding; HCOLON = *( SP / HTAB ) ":" SWS.
    "header_line_re": (f"({HEADER_NAME})[ \\t]*:[ \\t]*(.*)", re.S),
    # A CTL anywhere in a header value, except where a quoted-pair escapes it (search()).
    "bad_ctl_re": (r"(?<!\\)[\x00-\x08\x0a-\x1f\x7f]", 0),
    "reason_bad_re": (r"[\x00-\x08\x0a-\x1f\x7f]", 0),  # search()
    # One ";name[=value]" header parameter (generic-param), match() at a position.
    "generic_param_re": (f"{SWS};{SWS}({TOKEN})(?:{SWS}={SWS}({GEN_VALUE}))?", 0),
    # name-addr = [ display-name ] LAQUOT addr-spec RAQUOT, match() as a prefix.
    "name_addr_re": (
        f"(?:(?P<quoted>{QUOTED_STRING})|(?P<tokens>{TOKEN}(?:{LWS}{TOKEN})*))?{SWS}"
        "<(?P<uri>[^<>]*)>",
        0,
    ),
    # addr-spec outside <>: ends at the first LWS or ";" (RFC 3261 §20.10), match().
    "addr_spec_re": (r"[^ \t;]+", 0),
    # via-parm prefix: sent-protocol LWS sent-by; SLASH = SWS "/" SWS, COLON alike; match().
    "via_re": (
        f"(?P<name>{TOKEN}){SWS}/{SWS}(?P<version>{TOKEN}){SWS}/{SWS}(?P<transport>{TOKEN})"
        f"{LWS}(?P<host>{HOST_CANDIDATE})(?:{SWS}:{SWS}(?P<port>{PORT}))?",
        0,
    ),
    "cseq_re": (f"([0-9]+){LWS}({METHOD})", 0),
    "digits_re": ("[0-9]+", 0),
    "password_re": (PASSWORD, 0),
    "hname_re": (f"{HNV}+", 0),
    "hvalue_re": (f"{HNV}*", 0),
    "absolute_uri_re": (ABSOLUTE_URI, 0),
    "rfc1123_date_re": (RFC1123_DATE, 0),
    "quoted_string_prefix_re": (QUOTED_STRING, 0),  # match()
    "qvalue_re": (r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?", 0),
    "warning_re": (f"([0-9]{{3}}) [^ ]+ {QUOTED_STRING}", 0),
    "media_type_re": (f"{TOKEN}{SWS}/{SWS}{TOKEN}", 0),  # match()
    # One element of a comma-separated list header: runs of quoted strings, <...>
    # and plain characters; match() at a position.
    "list_element_re": (r'(?:"(?:[^"\\]|\\.)*"|<[^<>]*>|[^,"<])*', re.S),
}
token_re: re.Pattern[str]
method_re: re.Pattern[str]
callid_re: re.Pattern[str]
host_re: re.Pattern[str]
ipv4_re: re.Pattern[str]
user_re: re.Pattern[str]
pname_re: re.Pattern[str]
pvalue_re: re.Pattern[str]
sip_version_re: re.Pattern[str]
quoted_pair_re: re.Pattern[str]
escaped_re: re.Pattern[str]
header_line_re: re.Pattern[str]
bad_ctl_re: re.Pattern[str]
reason_bad_re: re.Pattern[str]
generic_param_re: re.Pattern[str]
name_addr_re: re.Pattern[str]
addr_spec_re: re.Pattern[str]
via_re: re.Pattern[str]
cseq_re: re.Pattern[str]
digits_re: re.Pattern[str]
password_re: re.Pattern[str]
hname_re: re.Pattern[str]
hvalue_re: re.Pattern[str]
absolute_uri_re: re.Pattern[str]
rfc1123_date_re: re.Pattern[str]
quoted_string_prefix_re: re.Pattern[str]
qvalue_re: re.Pattern[str]
warning_re: re.Pattern[str]
media_type_re: re.Pattern[str]
list_element_re: re.Pattern[str]


def __getattr__(name: str) -> re.Pattern[str]:
    entry = _LAZY.get(name)
    if entry is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    pattern = globals()[name] = re.compile(*entry)
    return pattern


# --- str-method fast paths ------------------------------------------------------
# Exactly the same answers as the compiled rules above, for the rules every
# message needs; a ``qsipctl probe`` parses a handful of messages, and
# compiling their regular expressions cost more than matching them.

# TOKEN_CHARS spelled out (a unit test holds the two together)
TOKEN_STR = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"


# Characters that end a host (not an IPv6 reference): HOST_CANDIDATE's second branch.
HOST_END_CHARS = frozenset(" \t;:,[]?")
# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#        "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")
WORD_STR = TOKEN_STR + '()<>:\\"/[]?{}'


def is_token(text: str) -> bool:
    """``token_re.fullmatch(text)``: non-empty, token characters only."""
    return bool(text) and not text.strip(TOKEN_STR)


def is_digits(text: str) -> bool:
    """``digits_re.fullmatch(text)``: non-empty, ASCII digits only."""
    return text.isascii() and text.isdigit()


def is_ipv4(text: str) -> bool:
    """``ipv4_re.fullmatch(text)``: four dot-separated runs of 1-3 ASCII digits."""
    parts = text.split(".")
    return len(parts) == 4 and all(len(p) <= 3 and is_digits(p) for p in parts)


def is_callid(text: str) -> bool:
    """``callid_re.fullmatch(text)``: ``word [ "@" word ]``."""
    words = text.split("@")
    return len(words) <= 2 and all(w and not w.strip(WORD_STR) for w in words)
