"""The per-core document provisioning pushes (format: docs/config-format.md).

Deterministic by construction: sorted keys, 2-space indent, UTF-8, one
trailing newline, no timestamps; the same site always renders the same
bytes, so the rollout engine can compare hashes to decide "changed" vs "ok".
Expectations are deliberately absent: the core has no field for them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from qsipctl.errors import Diagnostic, InvalidInput
from qsipctl.site.model import Core, CoreSettings, HostPort, Softphone
from qsipctl.site.secrets import MASK

SCHEMA = "qsipctl.softphone-config"
VERSION = 1


@dataclass(frozen=True)
class RenderedConfig:
    core: Core
    document: bytes  # the exact bytes pushed to the core (secrets revealed)
    masked: str  # the same document with every secret replaced by MASK
    sha256: str  # hex sha256 of ``document``


def render_core(core: Core) -> RenderedConfig:
    """Render ``core``; an unresolvable secret is an :class:`InvalidInput`."""
    passwords, problems = _reveal_all(core)
    if problems:
        raise InvalidInput(problems)
    document = _dump(build_document(core, passwords)).encode("utf-8")
    masked = _dump(build_document(core, [MASK] * len(core.softphones)))
    return RenderedConfig(core, document, masked, hashlib.sha256(document).hexdigest())


def _reveal_all(core: Core) -> tuple[list[str], list[Diagnostic]]:
    passwords: list[str] = []
    problems: list[Diagnostic] = []
    for phone in core.softphones:
        try:
            passwords.append(phone.password.reveal())
        except InvalidInput as exc:
            problems.extend(exc.diagnostics)
            passwords.append("")
    return passwords, problems


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_document(core: Core, passwords: list[str]) -> dict[str, Any]:
    """The document as plain data; ``passwords`` in softphone order."""
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "core": {"name": core.name, "model": core.model},
        "core_settings": _settings(core.settings),
        "softphones": [_phone(p, pw) for p, pw in zip(core.softphones, passwords, strict=True)],
    }


def _hp(value: HostPort | None) -> str | None:
    return None if value is None else str(value)


def _settings(s: CoreSettings) -> dict[str, Any]:
    rfc2833 = s.dtmf_mode == "rfc2833"
    return {
        "interface": s.interface,
        "sip_port": s.sip_port,
        "srtp": s.srtp,
        "dtmf": {"mode": s.dtmf_mode, "payload_type": s.dtmf_payload_type if rfc2833 else None},
        "stun": {
            "enabled": s.stun_enabled,
            "server": _hp(s.stun_server) if s.stun_enabled else None,
        },
        "codecs": list(s.codecs),
        "early_offer": True,
    }


def _phone(p: Softphone, password: str) -> dict[str, Any]:
    return {
        "index": p.index,
        "name": p.name,
        "profile": p.profile,
        "username": p.username,
        "cid_name": p.cid_name,
        "transport": p.transport,
        "proxy": _hp(p.proxy),
        "backup_proxy": _hp(p.backup_proxy),
        "register": p.register,
        "auth_id": p.auth_id,
        "password": password,
        "domain": p.domain,
        "registration_timeout": p.registration_timeout,
        "tls": {
            "ca_file": p.tls.ca_file_written,  # never the resolved, host-specific path
            "verify": p.tls.verify,
            "server_name": p.tls.server_name,
        }
        if p.transport == "tls"
        else None,
    }
