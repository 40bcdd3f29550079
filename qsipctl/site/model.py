"""The resolved site: what the rest of qsipctl consumes.

Loading (inventory + profiles + validation) produces these frozen objects;
rendering, provisioning and the probes only read them.  Fields mirror the
Q-SYS Core Manager *Softphones* page: :class:`CoreSettings` holds what the
core shares between all its softphones, :class:`Softphone` what each phone
has of its own, and :class:`Expectations` what the PBX expects but the core
has no field for (used by probes, never pushed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from qsipctl.errors import Location
from qsipctl.site.secrets import Secret
from qsipctl.site.vault import VaultLocked, VaultStr

Transport = Literal["udp", "tcp", "tls"]
DtmfMode = Literal["rfc2833", "sip-info"]
ConnectorKind = Literal["ssh", "local"]

RTP_PORT_MIN = 16384  # fixed on the core (QSC: Softphone RTP range 16384-32768)
RTP_PORT_MAX = 32768
CORE_RTP_RANGE = (RTP_PORT_MIN, RTP_PORT_MAX)  # where a test call's media binds, as the core's


@dataclass(frozen=True)
class HostPort:
    """A host (name or bare IP address) and an optional port; ``str()`` brackets IPv6."""

    host: str
    port: int | None = None  # None: use the transport default / RFC 3263

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


@dataclass(frozen=True)
class Connection:
    """How the rollout engine reaches a core (see docs/provisioning.md)."""

    connector: ConnectorKind
    host: str  # address or name (ansible_host, default: inventory hostname)
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    password: Secret | None = None
    jump_host: str | None = None  # "user@host:port"
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    config_path: str = "/var/lib/qsipctl/softphone.json"
    apply_command: str | None = None
    backup_keep: int = 5
    timeout: float = 30.0
    local_dir: str | None = None  # for connector "local": the directory standing in for the core


@dataclass(frozen=True)
class TlsOptions:
    """How a softphone checks the PBX certificate when its transport is TLS."""

    ca_file: str | None = None  # absolute, on the machine running qsipctl (probes open it)
    verify: bool = True
    server_name: str | None = None
    ca_file_written: str | None = None  # as in the inventory/profile (the rendered document)


@dataclass(frozen=True)
class Expectations:
    """What the PBX expects that the core cannot be told (probes check these)."""

    session_timer: int | None = None  # Session-Expires the PBX wants, seconds
    min_se: int | None = None
    keepalive: str | None = None  # "options", "crlf", "none"
    keepalive_interval: int | None = None
    rtp_port_range: tuple[int, int] = (RTP_PORT_MIN, RTP_PORT_MAX)
    registrar: HostPort | None = None
    outbound_proxy: HostPort | None = None
    notes: tuple[str, ...] = ()
    pbx_networks: tuple[str, ...] = ()  # CIDRs the PBX signals/sends media from
    test_number: str | None = None  # what `diagnose --via-core` dials by default


@dataclass(frozen=True)
class CoreSettings:
    """Shared by every softphone on one core (Core Manager > Softphones, top block)."""

    interface: str = "LAN A"
    sip_port: int = 5060
    srtp: bool = False
    dtmf_mode: DtmfMode = "rfc2833"
    dtmf_payload_type: int = 101
    stun_enabled: bool = False
    stun_server: HostPort | None = None
    codecs: tuple[str, ...] = ("PCMU", "PCMA", "G722")


@dataclass(frozen=True)
class Softphone:
    """One softphone account on a core (Core Manager > Softphones, per-phone block)."""

    index: int  # 1-based position on the core
    name: str  # the softphone component's name in the design
    profile: str  # PBX profile name
    username: str
    cid_name: str | None
    transport: Transport
    proxy: HostPort
    backup_proxy: HostPort | None
    register: bool
    auth_id: str
    password: Secret
    domain: str
    registration_timeout: int = 3600
    tls: TlsOptions = field(default_factory=TlsOptions)
    expectations: Expectations = field(default_factory=Expectations)
    source: Location | None = None
    code_name: str | None = None  # the component's Code Name in the design (QRC); None: name


@dataclass(frozen=True)
class QrcAccess:
    """How `diagnose --via-core` reaches the core's QRC service (QSC: TCP 1710)."""

    host: str | None = None  # None: the core's address
    port: int = 1710
    user: str | None = None  # an account from Q-SYS Administrator; None: no Logon
    password: Secret | None = None


@dataclass(frozen=True)
class Core:
    """One Q-SYS core of the site, validated: what provision pushes and probes test."""

    name: str  # inventory hostname
    model: str  # e.g. "Core 110f"
    groups: tuple[str, ...]
    address: str  # ansible_host or name
    connection: Connection
    settings: CoreSettings
    softphones: tuple[Softphone, ...]
    variables: dict[str, object] = field(default_factory=dict, compare=False)
    source: Location | None = None
    qrc: QrcAccess = field(default_factory=QrcAccess)


@dataclass(frozen=True)
class HostInfo:
    """A selected inventory host as qsipctl resolved it, for ``qsipctl inventory``.

    ``variables`` are as written (``ansible-inventory --host`` shows the same),
    secrets masked; ``sources`` say where each of qsipctl's settings came from;
    ``resolved`` are those settings after templating, secrets masked.  The
    views are computed when asked for: loading a 20 000-host site pays nothing.
    """

    name: str
    is_core: bool
    groups: tuple[str, ...]
    raw: Mapping[str, Any] = field(compare=False, repr=False)
    settings: Mapping[str, Any] = field(compare=False, repr=False)  # key -> Sourced

    @property
    def variables(self) -> dict[str, object]:
        return {k: masked(k, v) for k, v in self.raw.items()}

    @property
    def sources(self) -> dict[str, str]:
        return {k: s.describe() for k, s in self.settings.items()}

    @property
    def resolved(self) -> dict[str, object]:
        return {k: masked(k, s.value) for k, s in self.settings.items()}


def masked(key: str, value: Any, depth: int = 0) -> Any:
    """A variable's value safe to show: secrets (by name or from a vault) are ********."""
    from qsipctl.site.secrets import MASK, secret_like

    if secret_like(key) or isinstance(value, Secret | VaultStr | VaultLocked):
        return MASK if value not in (None, "") else value
    if depth > 16:
        return value
    if isinstance(value, dict):
        return {k: masked(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [masked("", v, depth + 1) for v in value]
    return value


@dataclass(frozen=True)
class Site:
    """A loaded, validated site: the selected cores and what the inventory says about them."""

    path: str
    cores: tuple[Core, ...]
    groups: dict[str, tuple[str, ...]]  # group -> host names (transitively), Ansible's order
    profile_dirs: tuple[str, ...] = ()
    others: tuple[str, ...] = ()  # selected hosts that are not Q-SYS cores (switches, servers)
    hosts: tuple[HostInfo, ...] = ()  # every selected host as resolved (``inventory --host``)

    def core(self, name: str) -> Core:
        for core in self.cores:
            if core.name == name:
                return core
        raise KeyError(name)
