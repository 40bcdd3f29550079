"""The settings a profile, a group's ``softphone_defaults`` or a softphone entry may set.

One flat namespace of dotted leaves (``dtmf.mode``, ``tls.verify``) is shared
by every layer, so precedence is resolved leaf by leaf and every resolved
value can say where it came from.  YAML may write them nested
(``dtmf: {mode: rfc2833}``); :func:`flatten` turns that into leaves.

``scope`` says where a leaf lands: ``core`` (shared by all softphones of a
core, top block of Core Manager > Softphones), ``phone`` (per softphone),
``expect`` (what the PBX expects but the core has no field for: never pushed,
used by probes) or ``meta``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from qsipctl.site import values as v
from qsipctl.site.suggest import did_you_mean
from qsipctl.site.yamlsrc import KeyPath

Scope = Literal["core", "phone", "expect", "meta"]


@dataclass(frozen=True)
class Field:
    """One settable leaf: its parser, where it lands (``scope``) and its default."""

    name: str
    parse: Callable[[Any], Any]
    scope: Scope
    default: Any
    doc: str
    nullable: bool = False


def _hostport(value: Any) -> Any:
    return v.as_hostport(value)


def _stun_server(value: Any) -> Any:
    return v.as_hostport(value, default_port=3478)


def _timer(value: Any) -> int:
    return v.as_int(value, 90, 86400, "seconds")


def _keepalive(value: Any) -> str:
    text = v.as_str(value, "a keep-alive method").strip().lower()
    if text not in ("options", "crlf", "none"):
        raise v.FieldError(f"unknown keep-alive method {text!r}; expected options, crlf or none")
    return text


def _interval(value: Any) -> int:
    return v.as_int(value, 1, 3600, "seconds")


def _expiry(value: Any) -> int:
    return v.as_int(value, 1, 2**31 - 1, "seconds")


def _payload_type(value: Any) -> int:
    return v.as_int(value, 96, 127, "a dynamic RTP payload type")


def _text(value: Any) -> str:
    return v.as_str(value)


_FIELDS = [
    # core-wide (one value per core)
    Field("sip_port", v.as_sip_port, "core", 5060, "local UDP SIP port of the core"),
    Field("srtp", v.as_bool, "core", False, "SRTP (SDES) on or off"),
    Field("dtmf.mode", v.as_dtmf_mode, "core", "rfc2833", "rfc2833 or sip-info"),
    Field("dtmf.payload_type", _payload_type, "core", 101, "RFC 2833 payload type 96-127"),
    Field("stun.enabled", v.as_bool, "core", False, "use STUN to learn the public address"),
    Field("stun.server", _stun_server, "core", None, "STUN server host:port", True),
    Field("codecs", v.as_codecs, "core", ("PCMU", "PCMA", "G722"), "audio codecs, in order"),
    # per softphone
    Field("registrar", _hostport, "phone", None, "registrar/proxy host:port", True),
    Field("outbound_proxy", _hostport, "phone", None, "outbound proxy host:port", True),
    Field("backup_proxy", _hostport, "phone", None, "backup proxy host:port", True),
    Field("domain", v.as_host, "phone", None, "SIP domain (default: registrar host)", True),
    Field("transport", v.as_transport, "phone", "udp", "udp, tcp or tls"),
    Field("register", v.as_bool, "phone", True, "register with the proxy"),
    Field("registration_timeout", _expiry, "phone", 3600, "REGISTER expiry, seconds"),
    Field("tls.ca_file", _text, "phone", None, "CA bundle the PBX certificate chains to", True),
    Field("tls.verify", v.as_bool, "phone", True, "verify the PBX certificate"),
    Field("tls.server_name", v.as_host, "phone", None, "name expected in the certificate", True),
    # expectations (never pushed)
    Field("session_timer.expires", _timer, "expect", None, "Session-Expires the PBX uses", True),
    Field("session_timer.min_se", _timer, "expect", None, "Min-SE the PBX enforces", True),
    Field("keepalive.method", _keepalive, "expect", None, "options, crlf or none", True),
    Field("keepalive.interval", _interval, "expect", None, "seconds between keep-alives", True),
    Field("rtp_port_range", v.as_rtp_range, "expect", (16384, 32768), "RTP ports the PBX allows"),
    Field("pbx_networks", v.as_network_list, "expect", (), "networks the PBX sends from"),
    Field("notes", v.as_str_list, "expect", (), "free text shown by diagnostics"),
    Field("test_number", _text, "expect", None, "number diagnose --via-core dials", True),
    # meta
    Field("apply_command", _text, "meta", None, "command run on the core after a push", True),
]
FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}
GROUPS = frozenset(name.split(".")[0] for name in FIELDS if "." in name)
CORE_FIELDS = tuple(f.name for f in _FIELDS if f.scope == "core")

# Keys only a softphone entry (or softphone_defaults) has: the account.
ACCOUNT_KEYS = ("name", "profile", "username", "auth_id", "password", "cid_name", "code_name")
PROFILE_ONLY_KEYS = ("description", "extends")

# host:port fields whose bare IPv6 values are checked for a port written without [].
PORT_HINTS = {
    "registrar": v.SIP_PORTS,
    "outbound_proxy": v.SIP_PORTS,
    "backup_proxy": v.SIP_PORTS,
    "stun.server": v.STUN_PORTS,
}


def flatten(
    mapping: Mapping[str, Any],
    path: KeyPath,
    allowed_extra: tuple[str, ...] = (),
) -> Iterator[tuple[str, Any, KeyPath] | tuple[None, str, KeyPath]]:
    """Yield ``(leaf, value, keypath)``; ``(None, message, keypath)`` for a bad key."""
    for key, value in mapping.items():
        kp = (*path, key)
        if key in allowed_extra or key in FIELDS:
            yield key, value, kp
        elif key in GROUPS:
            yield from _flatten_group(key, value, kp)
        elif "." in key and key.split(".")[0] in GROUPS:
            yield None, f"unknown key {key!r}{did_you_mean(key, FIELDS)}", kp
        else:
            known = [*FIELDS, *GROUPS, *allowed_extra]
            yield None, f"unknown key {key!r}{did_you_mean(key, known)}", kp


def _flatten_group(
    group: str, value: Any, path: KeyPath
) -> Iterator[tuple[str, Any, KeyPath] | tuple[None, str, KeyPath]]:
    if group == "dtmf" and isinstance(value, str):
        yield "dtmf.mode", value, path  # `dtmf: sip-info` is how people write it
        return
    if not isinstance(value, dict):
        subs = sorted(n.split(".")[1] for n in FIELDS if n.startswith(group + "."))
        yield None, f"expected a mapping with {', '.join(subs)}, got {v.type_name(value)}", path
        return
    for sub, item in value.items():
        leaf = f"{group}.{sub}"
        if leaf in FIELDS:
            yield leaf, item, (*path, sub)
        else:
            subs = [n.split(".")[1] for n in FIELDS if n.startswith(group + ".")]
            yield (
                None,
                f"unknown key {sub!r} in {group}{did_you_mean(str(sub), subs)}",
                (
                    *path,
                    sub,
                ),
            )
