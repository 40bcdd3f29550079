"""The settings sheet: the Core Manager *Softphones* page as an engineer reads it.

Same labels and order as the page (core-wide block, then one block per
softphone), values spelled the way the page shows them, and what the PBX
expects but cannot be set on the core listed apart, so nobody hunts for a
"Session Timer" field that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from qsipctl.site.model import Core, Expectations, HostPort, Softphone
from qsipctl.site.secrets import MASK
from qsipctl.site.values import CODEC_LABELS

Rows = list[tuple[str, str]]


@dataclass(frozen=True)
class Sheet:
    core: str
    model: str
    core_wide: Rows
    softphones: list[tuple[str, Rows, Rows]]  # (title, settings, expectations)

    def as_dict(self) -> dict[str, object]:
        return {
            "core": self.core,
            "model": self.model,
            "core_wide": dict(self.core_wide),
            "softphones": [
                {"title": t, "settings": dict(s), "pbx_expects": dict(e)}
                for t, s, e in self.softphones
            ],
        }


def _onoff(flag: bool) -> str:
    return "On" if flag else "Off"


def _hp(value: HostPort | None) -> str:
    return "-" if value is None else str(value)


def build_sheet(core: Core, passwords: list[str] | None = None) -> Sheet:
    s = core.settings
    dtmf = (
        f"RFC 2833 (payload type {s.dtmf_payload_type})" if s.dtmf_mode == "rfc2833" else "SIP INFO"
    )
    stun = f"On ({s.stun_server})" if s.stun_enabled else "Off"
    codecs = ", ".join(f"{i}. {CODEC_LABELS[c]}" for i, c in enumerate(s.codecs, 1))
    core_wide = [
        ("Core Interface", s.interface),
        ("SIP Port", f"{s.sip_port} (UDP)"),
        ("SRTP", _onoff(s.srtp)),
        ("DTMF", dtmf),
        ("STUN", stun),
        ("Audio Codecs", codecs),
        ("RTP Ports", "16384-32768 (fixed)"),
    ]
    phones = []
    for i, phone in enumerate(core.softphones):
        pw = passwords[i] if passwords else MASK
        phones.append(_phone_block(phone, pw))
    return Sheet(core.name, core.model, core_wide, phones)


def _phone_block(p: Softphone, password: str) -> tuple[str, Rows, Rows]:
    title = f"Softphone {p.index}: {p.name} (profile {p.profile})"
    rows = [
        ("Username", p.username),
        ("CID Name", p.cid_name or "-"),
        ("Transport", p.transport.upper() + (" (TLS 1.2)" if p.transport == "tls" else "")),
        ("Proxy", _hp(p.proxy)),
        ("Backup Proxy", _hp(p.backup_proxy)),
        ("Register with Proxy", "Yes" if p.register else "No"),
        ("Authentication ID", p.auth_id),
        ("Password", password if password else "-"),
        ("Domain", p.domain),
        ("Registration Timeout", f"{p.registration_timeout} s"),
    ]
    return title, rows, _expectations(p.expectations)


def _expectations(e: Expectations) -> Rows:
    rows: Rows = []
    if e.registrar is not None:
        rows.append(("Registrar", str(e.registrar)))
    if e.session_timer is not None:
        min_se = f", Min-SE {e.min_se} s" if e.min_se else ""
        rows.append(("Session timer", f"{e.session_timer} s{min_se}"))
    if e.keepalive:
        every = f" every {e.keepalive_interval} s" if e.keepalive_interval else ""
        method = "None" if e.keepalive == "none" else e.keepalive.upper()
        rows.append(("Keep-alive", f"{method}{every if e.keepalive != 'none' else ''}"))
    rows.append(("PBX media ports", f"{e.rtp_port_range[0]}-{e.rtp_port_range[1]}"))
    if e.pbx_networks:
        rows.append(("PBX networks", ", ".join(e.pbx_networks)))
    if len(e.notes) == 1:
        rows.append(("Note", e.notes[0]))
    else:  # numbered: the JSON sheet is a mapping and must keep every note
        rows.extend((f"Note {i}", note) for i, note in enumerate(e.notes, 1))
    return rows
