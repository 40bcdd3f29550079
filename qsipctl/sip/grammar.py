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

# --- hosts (RFC 3261 §25.1 hostport, read liberally) ------------------------
# A label may hold "_" (Windows and container host names) and the last label
# may be all digits: RFC 3261's toplabel forbids both, real devices send both
# (issue 8), and nothing here resolves or acts on such a name.  A dotted quad
# of digits is still checked as an IPv4 address by the parsers.
DOMAINLABEL = r"[A-Za-z0-9_][A-Za-z0-9_\-]*"
HOSTNAME = f"{DOMAINLABEL}(?:\\.{DOMAINLABEL})*\\.?"
IPV4ADDRESS = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
# The first ":" is pinned (no ":" before it), so a failed match is linear.
IPV6ADDRESS = r"[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"
# RFC 6874 zone id ("%25eth0" in a URI; "%eth0" as some stacks write it).
ZONE_ID = r"%[A-Za-z0-9_.~\-]+"
IPV6REFERENCE = f"\\[{IPV6ADDRESS}(?:{ZONE_ID})?\\]"
HOST = f"(?:{HOSTNAME}|{IPV6REFERENCE})"
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
# gen-value = token / host / quoted-string; Via received and maddr also carry
# bare IPv6 addresses (RFC 3261 via-received), tried first since "2001" is a token.
GEN_VALUE = f"(?:{IPV6ADDRESS}|{TOKEN}|{IPV6REFERENCE}|{QUOTED_STRING})"
CALLID = f"{WORD}(?:@{WORD})?"
SIP_VERSION = r"[Ss][Ii][Pp]/[0-9]+\.[0-9]+"


# Where a host ends, so it can be cut out cheaply and then checked against
# host_re (one compiled copy of the host grammar instead of one per user).
HOST_CANDIDATE = r"\[[^\]]*\]|[^ \t;:,\[\]?]+"

# The compiled forms the parsers use.  All are used with fullmatch() unless
# the comment says match() (a prefix), search() or sub().
token_re = re.compile(TOKEN)
callid_re = re.compile(CALLID)
host_re = re.compile(HOST)
ipv4_re = re.compile(IPV4ADDRESS)
user_re = re.compile(USER)
pname_re = re.compile(f"{PARAMCHAR}+")
sip_version_re = re.compile(SIP_VERSION)
quoted_pair_re = re.compile(r"\\(.)", re.S)  # sub()
escaped_re = re.compile(ESCAPED)  # sub()
digits_re = re.compile("[0-9]+")
password_re = re.compile(PASSWORD)
hname_re = re.compile(f"{HNV}+")
hvalue_re = re.compile(f"{HNV}*")
absolute_uri_re = re.compile(ABSOLUTE_URI)
quoted_string_prefix_re = re.compile(QUOTED_STRING)  # match()
cseq_re = re.compile(f"([0-9]+){LWS}({TOKEN})")  # 1*DIGIT LWS Method
# "Name: value" after unfolding; HCOLON = *( SP / HTAB ) ":" SWS.
header_line_re = re.compile(f"({TOKEN})[ \\t]*:[ \\t]*(.*)", re.S)
# A CTL in a header value unless a quoted-pair escapes it (search(); CTL first: fast).
bad_ctl_re = re.compile(r"[\x00-\x08\x0a-\x1f\x7f](?<!\\[\x00-\x08\x0a-\x1f\x7f])")
reason_bad_re = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # search()
# One ";name[=value]" header parameter (generic-param) and the SWS after it,
# match() at a position.
generic_param_re = re.compile(f"{SWS};{SWS}({TOKEN})(?:{SWS}={SWS}({GEN_VALUE}))?{SWS}")
# The same, read liberally (From/To/Contact parameters the verdict does not
# rest on): any run of characters up to the next ";" as an unquoted value,
# an empty value, or nothing at all between two ";" (group 1 is then None).
loose_param_re = re.compile(
    f'{SWS};{SWS}(?:({TOKEN})(?:{SWS}={SWS}({QUOTED_STRING}|[^;"]*+))?)?[ \\t]*+(?=;|$)'
)
# name-addr = [ display-name ] LAQUOT addr-spec RAQUOT, match() as a prefix.
# Liberal display-name: besides a quoted-string, any run of characters but
# quotes, angle brackets and controls (RFC 3261 wants tokens; PBXs send
# "Müller, Jörg <sip:...>" unquoted).  Possessive, so a failure is linear.
name_addr_re = re.compile(
    f'(?:(?P<quoted>{QUOTED_STRING})|(?P<tokens>[^"<>\\x00-\\x08\\x0a-\\x1f\\x7f]*+)){SWS}'
    "<(?P<uri>[^<>]*)>"
)
# "sip: host": whitespace after the scheme in <...>, dropped with sub("") (SP first: fast).
scheme_space_re = re.compile(r"(?i)[ \t](?:(?<=sip:.)|(?<=sips:.))[ \t]*")
# addr-spec outside <>: ends at the first LWS or ";" (RFC 3261 §20.10), match().
addr_spec_re = re.compile(r"[^ \t;]+")
# via-parm prefix: sent-protocol LWS sent-by; SLASH = SWS "/" SWS, COLON alike; match().
via_re = re.compile(
    f"(?P<name>{TOKEN}){SWS}/{SWS}(?P<version>{TOKEN}){SWS}/{SWS}(?P<transport>{TOKEN})"
    f"{LWS}(?P<host>{HOST_CANDIDATE})(?:{SWS}:{SWS}(?P<port>{PORT}))?"
)
# One element of a comma-separated list header: runs of quoted strings, <...>
# and plain characters, each run one possessive step; match() at a position.
list_element_re = re.compile(r'(?:"(?:[^"\\]++|\\.)*+"|<[^<>]*+>|[^,"<]++)*+', re.S)
