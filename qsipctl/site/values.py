"""Validators for the values users type: addresses, ports, codecs, DTMF modes.

Each validator takes the raw YAML value and returns the normalised value or
raises :class:`FieldError` with a message that says what is accepted, so the
caller can attach file, line and key path.  Addresses go through netaddr
because ``10.0.0.256`` or ``fe80::g`` must be caught here, not at 3 a.m. on
site.
"""

from __future__ import annotations

import re
from typing import Any

import netaddr

from qsipctl.site.model import RTP_PORT_MAX, RTP_PORT_MIN, HostPort
from qsipctl.site.secrets import CONTROL_CHAR


class FieldError(ValueError):
    """A value of the right place but the wrong shape; str() is the message."""


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_DOTTED_NUMERIC = re.compile(r"^[0-9.]+$")
_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")

# Q-SYS documents these three softphone codecs; keys are what users write.
CODEC_ALIASES: dict[str, str] = {
    "pcmu": "PCMU",
    "g711u": "PCMU",
    "g.711u": "PCMU",
    "g711mu": "PCMU",
    "g.711µ-law": "PCMU",
    "g.711u-law": "PCMU",
    "g.711mu-law": "PCMU",
    "g711ulaw": "PCMU",
    "g711u-law": "PCMU",
    "ulaw": "PCMU",
    "µ-law": "PCMU",
    "mulaw": "PCMU",
    "pcma": "PCMA",
    "g711a": "PCMA",
    "g.711a": "PCMA",
    "g.711a-law": "PCMA",
    "g711alaw": "PCMA",
    "alaw": "PCMA",
    "a-law": "PCMA",
    "g722": "G722",
    "g.722": "G722",
}
CODEC_LABELS = {"PCMU": "G.711 µ-law", "PCMA": "G.711 A-law", "G722": "G.722"}
UNSUPPORTED_CODECS = ("g729", "g.729", "opus", "ilbc", "gsm", "g726", "speex", "amr", "g723")

DTMF_ALIASES = {
    "rfc2833": "rfc2833",
    "rfc4733": "rfc2833",
    "rfc-2833": "rfc2833",
    "sip-info": "sip-info",
    "sipinfo": "sip-info",
    "info": "sip-info",
    "sip_info": "sip-info",
}
INBAND_WORDS = ("inband", "in-band", "in_band", "audio")


_TYPE_NAMES = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "a mapping"),
)


def type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def as_str(value: Any, what: str = "a string") -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldError(f"expected {what}, got {type_name(value)}")
    written = getattr(value, "written", None)
    if written is not None:
        raise FieldError(
            f"YAML reads {written} as the number {value!r}; write it in quotes: '{written}'"
        )
    text = str(value)
    if not text.strip():
        raise FieldError(f"expected {what}, got an empty string")
    bad = CONTROL_CHAR.search(text)
    if bad is not None:
        raise FieldError(
            f"contains a control character (U+{ord(bad.group()):04X}); {what} is one line"
        )
    return text


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise FieldError(f"expected true or false, got {type_name(value)} {value!r}")
    return value


def as_int(value: Any, low: int, high: int, what: str = "an integer") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        else:
            raise FieldError(f"expected {what} {low}-{high}, got {type_name(value)} {value!r}")
    written = getattr(value, "written", "")
    if ":" in written or _OCTAL.match(written):
        raise FieldError(
            f"YAML reads {written} as {value!r} (a leading 0 means octal, ':' base 60); "
            f"write {written.lstrip('0') or '0'} or quote it"
        )
    if not low <= value <= high:
        raise FieldError(f"{value} is out of range: expected {what} {low}-{high}")
    return int(value)


def as_port(value: Any) -> int:
    return as_int(value, 1, 65535, "a port")


def as_sip_port(value: Any) -> int:
    port = as_port(value)
    if RTP_PORT_MIN <= port <= RTP_PORT_MAX:
        raise FieldError(
            f"SIP port {port} falls in the core's fixed RTP range "
            f"{RTP_PORT_MIN}-{RTP_PORT_MAX}; choose a port outside it (default 5060)"
        )
    return port


def as_host(value: Any) -> str:
    """An IPv4/IPv6 address or a DNS name (RFC 1123 labels)."""
    text = as_str(value, "a host name or IP address").strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        if netaddr.valid_ipv6(text):
            return str(netaddr.IPAddress(text, 6))
        raise FieldError(f"{text!r} is not a valid IPv6 address")
    if _DOTTED_NUMERIC.match(text):
        if netaddr.valid_ipv4(text, flags=netaddr.INET_PTON):
            return text
        raise FieldError(f"{text!r} is not a valid IPv4 address")
    labels = text.rstrip(".").split(".")
    if len(text) > 253 or not all(_LABEL.match(label) for label in labels):
        raise FieldError(f"{text!r} is neither an IP address nor a valid host name")
    return text


def as_hostport(value: Any, default_port: int | None = None) -> HostPort:
    """``host``, ``host:port``, ``[v6]:port``, a bare IPv6 address, or {host, port}."""
    if isinstance(value, dict):
        unknown = set(value) - {"host", "port"}
        if unknown:
            raise FieldError(f"unknown key {sorted(unknown)[0]!r}; expected host and port")
        if "host" not in value:
            raise FieldError("missing 'host'")
        port = as_port(value["port"]) if value.get("port") is not None else default_port
        return HostPort(as_host(value["host"]), port)
    text = as_str(value, "host or host:port").strip()
    if re.match(r"^[a-z]+:", text, re.I) and text.split(":", 1)[0].lower() in ("sip", "sips"):
        raise FieldError(f"{text!r} is a SIP URI; write host or host:port (no 'sip:')")
    host, port_text = _split_hostport(text)
    return HostPort(as_host(host), as_port(port_text) if port_text is not None else default_port)


def _split_hostport(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise FieldError(f"{text!r}: missing ']' after the IPv6 address")
        if rest and not rest.startswith(":"):
            raise FieldError(f"{text!r}: expected ':port' after ']'")
        return host, rest[1:] if rest else None
    if text.count(":") > 1:
        return text, None  # bare IPv6 address, no port
    host, sep, port = text.partition(":")
    return host, (port if sep else None)


# Ports people append to an address; as the last group of an unbracketed IPv6
# address they are almost surely a port written the IPv4 way (RFC 3986 3.2.2).
SIP_PORTS = frozenset({5060, 5061, 5062, 5070, 5080, 5081, 5090, 5160, 5161})
STUN_PORTS = frozenset({3478, 3479, 5349})


def ipv6_port_hint(value: Any, ports: frozenset[int]) -> str | None:
    """A warning when ``2001:db8::1:5060`` probably means port 5060.

    The text is a legal IPv6 address (``5060`` is a valid group), so it is
    accepted as one; but a registrar silently dialled on 5060 of the wrong
    address costs a site visit, hence the warning.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("[") or text.count(":") < 2:
        return None
    head, _, last = text.rpartition(":")
    if not last.isdigit() or int(last) not in ports or not netaddr.valid_ipv6(text):
        return None
    if head.endswith(":"):
        head += ":"  # 2001:db8::5060 -> 2001:db8::
    written = f"[{head}]:{last}" if netaddr.valid_ipv6(head) else f"[ADDRESS]:{last}"
    return (
        f"{text!r} is read as the IPv6 address {netaddr.IPAddress(text, 6)} with no port; "
        f"if {last} is meant as the port, write {written!r} (IPv6 with a port needs brackets)"
    )


def as_network(value: Any) -> str:
    text = as_str(value, "a network in CIDR form").strip()
    try:
        net = netaddr.IPNetwork(text)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise FieldError(f"{text!r} is not a valid IPv4 or IPv6 network") from None
    if net.ip != net.network:
        raise FieldError(f"{text!r} has host bits set (did you mean '{net.cidr}'?)")
    return str(net.cidr)


def as_codecs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list):
        raise FieldError(f"expected a non-empty list of codecs, got {type_name(value)}")
    if not value:
        raise FieldError("expected a non-empty list of codecs, got an empty list")
    out: list[str] = []
    for item in value:
        codec = as_codec(item)
        if codec in out:
            raise FieldError(f"codec {CODEC_LABELS[codec]} is listed twice")
        out.append(codec)
    return tuple(out)


def as_codec(value: Any) -> str:
    text = as_str(value, "a codec name")
    key = text.strip().lower().replace(" ", "").replace("_", "").replace("\u03bc", "\u00b5")
    key = re.sub(r"/(8000|16000)$", "", key)  # SDP rtpmap style: PCMU/8000, G722/8000
    if key in CODEC_ALIASES:
        return CODEC_ALIASES[key]
    supported = ", ".join(f"{k} ({v})" for k, v in CODEC_LABELS.items())
    if any(key.startswith(u) for u in UNSUPPORTED_CODECS):
        raise FieldError(f"codec {text!r} is not offered by Q-SYS softphones; use {supported}")
    raise FieldError(f"unknown codec {text!r}; supported: {supported}")


def as_dtmf_mode(value: Any) -> str:
    text = as_str(value, "a DTMF mode")
    key = text.strip().lower().replace(" ", "-")
    if key in DTMF_ALIASES:
        return DTMF_ALIASES[key]
    if key in INBAND_WORDS:
        raise FieldError(
            "in-band DTMF is not available: Q-SYS softphones send DTMF out of band only "
            "(RFC 2833 telephone-events or SIP INFO); use rfc2833 unless the PBX needs sip-info"
        )
    raise FieldError(f"unknown DTMF mode {text!r}; expected rfc2833 or sip-info")


def as_transport(value: Any) -> str:
    text = as_str(value, "a transport").strip().lower()
    if text not in ("udp", "tcp", "tls"):
        raise FieldError(f"unknown transport {text!r}; expected udp, tcp or tls")
    return text


def as_rtp_range(value: Any) -> tuple[int, int]:
    if isinstance(value, str) and "-" in value:
        value = value.split("-", 1)
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise FieldError("expected [first, last] or 'first-last'")
    low, high = as_port(value[0]), as_port(value[1])
    if low > high:
        raise FieldError(f"range {low}-{high} is backwards: first port must not exceed last")
    return low, high


def as_str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise FieldError(f"expected a list of strings, got {type_name(value)}")
    return tuple(as_str(v) for v in value)


def as_network_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise FieldError(f"expected a list of networks, got {type_name(value)}")
    return tuple(as_network(v) for v in value)
