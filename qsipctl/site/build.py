"""Turn resolved host variables and profiles into Core objects.

This is where the Core Manager's rules live: one value per core for the
shared settings (a disagreement between two softphones' sources is an error
naming both), a per-model softphone limit, out-of-band DTMF only, and the
separation between what is pushed and what the PBX merely expects.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from qsipctl.addr import host_port, is_ip, normalize_ip
from qsipctl.errors import Diagnostic, Location
from qsipctl.site import values as v
from qsipctl.site.cafile import ca_file_problem, resolve_beside
from qsipctl.site.coremodels import SOFTPHONE_LIMITS, canonical_model
from qsipctl.site.fields import ACCOUNT_KEYS, CORE_FIELDS, FIELDS, PORT_HINTS, flatten
from qsipctl.site.inventory import SETTINGS, HostVars, Inventory
from qsipctl.site.model import (
    Connection,
    Core,
    CoreSettings,
    Expectations,
    HostInfo,
    HostPort,
    QrcAccess,
    Softphone,
    TlsOptions,
)
from qsipctl.site.profiles import ProfileLibrary, Sourced
from qsipctl.site.secrets import MASK, Secret, secret_like
from qsipctl.site.suggest import did_you_mean
from qsipctl.site.template import TemplateFailed
from qsipctl.site.vault import VaultLocked, VaultStr
from qsipctl.site.yamlsrc import KeyPath, YamlDoc, format_keypath

INTERFACES = {"lana": "LAN A", "a": "LAN A", "lanb": "LAN B", "b": "LAN B"}


@dataclass
class PhoneDraft:
    """A softphone whose every leaf is resolved with its source."""

    index: int
    name: str
    keypath: KeyPath
    location: Location
    values: dict[str, Sourced]
    profile: str
    ca_path: str | None = None  # tls.ca_file resolved beside the file that set it


class _Ctx:
    def __init__(
        self, inv: Inventory, lib: ProfileLibrary, base: Path, diags: list[Diagnostic]
    ) -> None:
        self.doc: YamlDoc = inv.doc
        self.lib = lib
        self.base = base
        self.diags = diags
        self.ca_checked: dict[str, str | None] = {}  # path -> problem, each file read once
        self.secret_errors: set[int] = set()  # ids of diagnostics about unresolvable secrets
        self.push_checks = False  # also check what only a push needs (SSH key files)
        # (leaf, text) -> (value, IPv6 port hint) or the FieldError's message: a site's
        # thousand softphones naming one registrar parse it once
        self.parsed: dict[tuple[str, str], tuple[Any, str | None] | str] = {}
        self.profiles: dict[str, dict[str, Sourced]] = {}  # see profile_values

    def failed(self, since: int) -> bool:
        """Errors since ``since``, other than unresolvable secrets (which hide nothing else)."""
        return any(
            d.severity == "error" and id(d) not in self.secret_errors for d in self.diags[since:]
        )

    def error(self, kp: KeyPath, message: str) -> None:
        self.diags.append(self.doc.diag(kp, message))

    def profile_values(self, name: str) -> dict[str, Sourced]:
        """Every field's default overlaid with profile ``name``: built once, copied per phone."""
        if name not in self.profiles:
            values = dict(_defaults())
            values.update(self.lib.resolve(name).values)
            self.profiles[name] = values
        return self.profiles[name]

    def parse_field(self, leaf: str, value: Any) -> tuple[Any, str | None]:
        """``FIELDS[leaf]``'s parse of ``value`` and its IPv6 port hint; raises FieldError.

        The parsers are pure and return immutable values, so plain text is
        parsed once per site; anything else (numbers that remember their
        spelling, vault strings, mappings) is parsed where it is met.
        """
        if type(value) is not str:
            return _parse_field(leaf, value)
        key = (leaf, value)
        known = self.parsed.get(key)
        if known is None:
            try:
                known = _parse_field(leaf, value)
            except v.FieldError as exc:
                known = str(exc)
            self.parsed[key] = known
        if isinstance(known, str):
            raise v.FieldError(known)
        return known

    def warn(self, kp: KeyPath, message: str) -> None:
        d = self.doc.diag(kp, message)
        self.diags.append(Diagnostic(d.message, d.location, d.keypath, "warning"))


def build_cores(
    inv: Inventory,
    lib: ProfileLibrary,
    base_dir: Path,
    diags: list[Diagnostic],
    check_secrets: bool = True,
) -> list[Core]:
    """The selected hosts that are Q-SYS cores, validated (see :func:`build_site_hosts`)."""
    return build_site_hosts(inv, lib, base_dir, diags, check_secrets)[0]


def build_site_hosts(
    inv: Inventory,
    lib: ProfileLibrary,
    base_dir: Path,
    diags: list[Diagnostic],
    check_secrets: bool = True,
    push_checks: bool = False,
) -> tuple[list[Core], list[str], list[HostInfo]]:
    """Cores, the names of hosts that are not cores, and every host as resolved.

    A host is a Q-SYS core when it has ``qsys_model`` or ``softphones``; an
    inventory that also lists switches and servers loads, and those hosts are
    skipped.  Every problem of a core is collected, and an unresolvable secret
    does not hide the others.  ``push_checks`` (``validate``) adds the problems
    a push would only meet later: an SSH key file that cannot be read, two
    cores writing one file.
    """
    ctx = _Ctx(inv, lib, base_dir, diags)
    ctx.push_checks = push_checks
    cores: list[Core] = []
    others: list[str] = []
    infos: list[HostInfo] = []
    for host in inv.hosts:
        is_core = _is_core(host)
        infos.append(_host_info(host, is_core))
        if not is_core:
            others.append(host.name)
            continue
        before = len(diags)
        core = _core(ctx, host, check_secrets)
        if core is not None and not any(d.severity == "error" for d in diags[before:]):
            cores.append(core)
    if push_checks:
        diags.extend(_shared_targets(cores))
    return cores, others, infos


def _is_core(host: HostVars) -> bool:
    return any(host.vars.get(k) and host.vars[k].value is not None for k in CORE_MARKERS)


CORE_MARKERS = ("qsys_model", "softphones")


def _host_info(host: HostVars, is_core: bool) -> HostInfo:
    settings = {k: s for k, s in host.vars.items() if k in SETTINGS}
    settings.update({f"softphone_defaults.{k}": s for k, s in host.defaults.items()})
    groups = tuple(g for g in host.groups if g != "all")
    return HostInfo(host.name, is_core, groups, host.raw, settings)


def _shared_targets(cores: list[Core]) -> list[Diagnostic]:
    """Two cores that would write the same file on the same machine overwrite each other.

    ``provision`` refuses this too (rollout.engine.check_distinct_targets);
    finding it at validate time means no surprise at push time.  The message
    uses the same words.
    """
    seen: dict[tuple[str, ...], Core] = {}
    out: list[Diagnostic] = []
    for core in cores:
        c = core.connection
        path = posixpath.normpath(c.config_path)
        if c.connector == "local":
            local = os.path.realpath(os.path.expanduser(c.local_dir or ""))
            key: tuple[str, ...] = ("local", local, path)
            where = f"local:{c.local_dir}"
        else:
            host = normalize_ip(c.host) if is_ip(c.host) else c.host.lower().rstrip(".")
            key = ("ssh", host, str(c.port), c.jump_host or "", path)
            where = host_port(c.host, c.port)
        first = seen.setdefault(key, core)
        if first is not core:
            out.append(
                Diagnostic(
                    f"{first.name} and {core.name} both write {where}:{c.config_path}: each "
                    "push would overwrite the other's softphones (give each core its own "
                    "qsipctl_config_path or address)",
                    core.source,
                )
            )
    return out


# -- host variables -------------------------------------------------------
def _var(ctx: _Ctx, host: HostVars, name: str, parse: Callable[[Any], Any]) -> Any:
    src = host.vars.get(name)
    if src is None or src.value is None or isinstance(src.value, TemplateFailed):
        return None
    try:
        return parse(src.value)
    except v.FieldError as exc:
        ctx.error(host.var_keypaths[name], str(exc))
        return None


def _path(ctx: _Ctx, text: Any) -> str:
    raw = v.as_str(text, "a path")
    if "\0" in raw:
        raise v.FieldError("a path cannot contain a NUL character")
    try:
        path = Path(raw).expanduser()
    except RuntimeError:
        path = Path(raw)
    return str(path if path.is_absolute() else ctx.base / path)


def _core(ctx: _Ctx, host: HostVars, check_secrets: bool) -> Core | None:
    model = _model(ctx, host)
    limit = _var(ctx, host, "qsys_softphone_limit", lambda x: v.as_int(x, 0, 256))
    interface = _var(ctx, host, "qsys_interface", _interface) or "LAN A"
    _var(ctx, host, "ansible_group_priority", lambda x: v.as_int(x, 0, 10**6))
    connection = _connection(ctx, host, check_secrets)
    phones = _phones(ctx, host, check_secrets)
    if limit is not None and model in SOFTPHONE_LIMITS and limit > SOFTPHONE_LIMITS[model]:
        ctx.error(
            host.var_keypaths["qsys_softphone_limit"],
            f"a {model} allows at most {SOFTPHONE_LIMITS[model]} softphones; "
            "qsys_softphone_limit may lower that, not raise it",
        )
        limit = SOFTPHONE_LIMITS[model]
    if limit is None and model is not None:
        limit = SOFTPHONE_LIMITS[model]
    count = _entry_count(host)
    if limit is not None and count > limit:
        ctx.error(
            host.var_keypaths["softphones"],
            f"{host.name} has {count} softphones but a {model or 'core'} allows {limit}",
        )
    listed = host.vars.get("softphones")
    if listed is None or listed.value is None or listed.value == []:
        ctx.warn(
            host.keypath,
            f"core {host.name} has no softphones: provision would push a document with none",
        )
    settings = _core_settings(ctx, host, phones, interface)
    apply_command = _apply_command(ctx, host, phones)
    if connection is None or settings is None or model is None:
        return None
    if apply_command and not connection.apply_command:
        connection = _replace_apply(connection, apply_command)
    return Core(
        name=host.name,
        model=model,
        groups=tuple(g for g in host.groups if g != "all"),
        address=connection.host,
        connection=connection,
        settings=settings,
        softphones=tuple(_softphone(p) for p in phones),
        variables=_public_vars(host),
        source=host.location,
        qrc=_qrc(ctx, host, check_secrets),
    )


def _entry_count(host: HostVars) -> int:
    src = host.vars.get("softphones")
    return len(src.value) if src is not None and isinstance(src.value, list) else 0


def _replace_apply(conn: Connection, command: str) -> Connection:
    from dataclasses import replace

    return replace(conn, apply_command=command)


def _public_vars(host: HostVars) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, src in host.vars.items():
        if key in ("softphones", "softphone_defaults"):
            continue  # structured, may hold literal passwords: read Core.softphones
        out[key] = MASK if secret_like(key) else src.value
    return out


def _model(ctx: _Ctx, host: HostVars) -> str | None:
    src = host.vars.get("qsys_model")
    if src is None:
        ctx.error(
            host.keypath,
            f"{host.name}: qsys_model is not set (one of: {', '.join(SOFTPHONE_LIMITS)})",
        )
        return None
    if isinstance(src.value, TemplateFailed):
        return None
    if not isinstance(src.value, str):
        ctx.error(host.var_keypaths["qsys_model"], "qsys_model must be a string")
        return None
    model = canonical_model(src.value)
    if model is None:
        if "qsys_softphone_limit" in host.vars:
            return src.value
        ctx.error(
            host.var_keypaths["qsys_model"],
            f"unknown core model {src.value!r}{did_you_mean(src.value, SOFTPHONE_LIMITS)}; "
            f"known: {', '.join(SOFTPHONE_LIMITS)} (or set qsys_softphone_limit)",
        )
    return model


def _interface(value: Any) -> str:
    text = v.as_str(value, "LAN A or LAN B")
    key = text.lower().replace(" ", "").replace("-", "").replace("_", "")
    if key not in INTERFACES:
        raise v.FieldError(f"unknown core interface {text!r}; expected LAN A or LAN B")
    return INTERFACES[key]


# -- connection -----------------------------------------------------------
def _connector(ctx: _Ctx, host: HostVars) -> str:
    own = _var(ctx, host, "qsipctl_connector", lambda x: _choice(x, ("ssh", "local")))
    if own:
        return str(own)
    kinds = ("ssh", "local", "paramiko", "smart")
    ans = _var(ctx, host, "ansible_connection", lambda x: _choice(x, kinds))
    return "local" if ans == "local" else "ssh"


def _choice(value: Any, options: tuple[str, ...]) -> str:
    text = v.as_str(value).strip().lower()
    if text not in options:
        raise v.FieldError(f"unknown value {text!r}; expected one of {', '.join(options)}")
    return text


def _connection(ctx: _Ctx, host: HostVars, check_secrets: bool) -> Connection | None:
    before = len(ctx.diags)
    connector = _connector(ctx, host)
    address = _var(ctx, host, "ansible_host", v.as_host) or _var(
        ctx, host, "ansible_ssh_host", v.as_host
    )
    port = _var(ctx, host, "ansible_port", v.as_port) or _var(
        ctx, host, "ansible_ssh_port", v.as_port
    )
    user = _var(ctx, host, "ansible_user", v.as_str) or _var(
        ctx, host, "ansible_ssh_user", v.as_str
    )
    password = _password_var(ctx, host, check_secrets)
    local_dir = _var(ctx, host, "qsipctl_local_dir", lambda x: _path(ctx, x))
    if connector == "local" and local_dir is None:
        ctx.error(
            host.keypath, f"{host.name} uses the local connector but has no qsipctl_local_dir"
        )
    key_file = _var(ctx, host, "ansible_ssh_private_key_file", lambda x: _path(ctx, x))
    key_var = "ansible_ssh_private_key_file"
    if key_file is None:
        key_file = _var(ctx, host, "ansible_private_key_file", lambda x: _path(ctx, x))
        key_var = "ansible_private_key_file"
    if key_file is not None and connector == "ssh" and check_secrets and ctx.push_checks:
        problem = _unreadable(key_file)
        if problem:
            ctx.error(host.var_keypaths[key_var], f"SSH private key file {key_file}: {problem}")
    conn = Connection(
        connector=connector,  # type: ignore[arg-type]
        host=address or host.name,
        port=port or 22,
        user=user,
        key_file=key_file,
        password=password,
        jump_host=_var(ctx, host, "qsipctl_jump_host", _jump_host),
        known_hosts=_var(ctx, host, "qsipctl_known_hosts", lambda x: _path(ctx, x)),
        config_path=_var(ctx, host, "qsipctl_config_path", _abs_posix)
        or "/var/lib/qsipctl/softphone.json",
        apply_command=_var(ctx, host, "qsipctl_apply_command", v.as_str),
        backup_keep=_int_or(_var(ctx, host, "qsipctl_backup_keep", _keep), 5),
        timeout=_var(ctx, host, "qsipctl_timeout", _timeout) or 30.0,
        local_dir=local_dir,
    )
    if ctx.failed(before):
        return None
    return conn


def _qrc(ctx: _Ctx, host: HostVars, check: bool) -> QrcAccess:
    """qsys_qrc_host/_port/_user/_password: how `diagnose --via-core` logs on."""
    src = host.vars.get("qsys_qrc_password")
    password = None
    if src is not None and src.value is not None:
        password = _secret(ctx, src, host.var_keypaths["qsys_qrc_password"], check)
    return QrcAccess(
        host=_var(ctx, host, "qsys_qrc_host", v.as_host),
        port=_int_or(_var(ctx, host, "qsys_qrc_port", v.as_port), 1710),
        user=_var(ctx, host, "qsys_qrc_user", v.as_str),
        password=password,
    )


def _unreadable(path: str) -> str | None:
    """Why a key file cannot be used at push time, checked now so validate reports it."""
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except IsADirectoryError:
        return "is a directory"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None


def _int_or(value: int | None, default: int) -> int:
    return default if value is None else value


def _keep(value: Any) -> int:
    return v.as_int(value, 0, 1000, "a count")


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise v.FieldError(f"expected seconds between 0 and 3600, got {value!r}")
    return float(value)


def _abs_posix(value: Any) -> str:
    text = v.as_str(value, "an absolute path on the core")
    if not text.startswith("/"):
        raise v.FieldError(f"{text!r} must be an absolute path on the core")
    return text


def _jump_host(value: Any) -> str:
    text = v.as_str(value, "user@host:port")
    user, _, rest = text.rpartition("@")
    hp = v.as_hostport(rest)
    return f"{user}@{hp}" if user else str(hp)


def _password_var(ctx: _Ctx, host: HostVars, check: bool) -> Secret | None:
    names = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
    name = next((n for n in names if n in host.vars), None)
    src = host.vars.get(name) if name else None
    if name is None or src is None or src.value is None:
        return None
    return _secret(ctx, src, host.var_keypaths[name], check)


def _secret(ctx: _Ctx, src: Sourced, kp: KeyPath, check: bool) -> Secret | None:
    value = src.value
    if isinstance(value, bool) or not isinstance(value, str | int):
        ctx.error(kp, f"expected a password, env:NAME or file:PATH, got {v.type_name(value)}")
        return None
    problem = _secret_shape(value)
    if problem:
        ctx.error(kp, problem)
        return None
    keypath = format_keypath(kp)
    if isinstance(value, VaultLocked):
        return Secret("vault", None, src.location, keypath)
    if isinstance(value, VaultStr):  # decrypted from a vault: not written in the clear
        return Secret("vault", str(value), src.location, keypath)
    secret = Secret.parse(str(value), src.location, keypath, ctx.base)
    if secret.is_literal and str(value):
        ctx.warn(kp, "literal password in the inventory; prefer env:NAME, file:PATH or a vault")
    if check:
        problem = secret.check()
        if problem:
            d = Diagnostic(problem, src.location, keypath)
            ctx.secret_errors.add(id(d))
            ctx.diags.append(d)
    return secret


_SHELL_REF = re.compile(r"^\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$")
_WINDOWS_REF = re.compile(r"^%[A-Za-z_][A-Za-z0-9_]*%$")
_PREFIX = re.compile(r"^\s*(env|file)\s*:", re.IGNORECASE)


def _secret_shape(value: str | int) -> str | None:
    """What is wrong with how a password is written; never quotes the value.

    Anything that still looks like a reference after templating would be
    pushed to the core as literal text: refuse it rather than guess.
    """
    if getattr(value, "written", None) is not None:
        return "YAML reads this unquoted password as a number and changes it; write it in quotes"
    if not isinstance(value, str) or isinstance(value, VaultStr | VaultLocked):
        return None
    if value in ("env:", "file:"):
        return f"{value} needs a name after it ({value}NAME_OR_PATH)"
    if "{{" in value or "{%" in value:
        return (
            "the password is an unexpanded template (marked !unsafe?); it would be pushed as "
            "literal text"
        )
    if _SHELL_REF.match(value) or _WINDOWS_REF.match(value):
        name = value.strip("${}%")
        return (
            f"the password looks like a shell variable reference; qsipctl does not expand it "
            f"and would push it as literal text: write env:{name}"
        )
    prefix = _PREFIX.match(value)
    if prefix and not value.startswith(("env:", "file:")):
        kind = prefix.group(1).lower()
        return (
            f"the password looks like an '{kind}:' reference but is not written '{kind}:NAME' "
            "(lower case, no spaces); it would be pushed as literal text"
        )
    return None


# -- softphones -----------------------------------------------------------
def _phones(ctx: _Ctx, host: HostVars, check: bool) -> list[PhoneDraft]:
    src = host.vars.get("softphones")
    if src is None or src.value is None or isinstance(src.value, TemplateFailed):
        return []
    kp = host.var_keypaths["softphones"]
    if not isinstance(src.value, list):
        ctx.error(kp, f"softphones must be a list, got {v.type_name(src.value)}")
        return []
    drafts: list[PhoneDraft] = []
    for i, entry in enumerate(src.value):
        draft = _phone(ctx, host, entry, (*kp, i), i + 1, check)
        if draft is not None:
            drafts.append(draft)
    _unique_names(ctx, drafts)
    return drafts


def _unique_names(ctx: _Ctx, drafts: list[PhoneDraft]) -> None:
    seen: dict[str, PhoneDraft] = {}
    for d in drafts:
        if d.name in seen:
            ctx.error(
                (*d.keypath, "name"),
                f"softphone name {d.name!r} is used twice on this core "
                f"(first at {seen[d.name].location})",
            )
        seen.setdefault(d.name, d)


def _phone(
    ctx: _Ctx, host: HostVars, entry: Any, kp: KeyPath, index: int, check: bool
) -> PhoneDraft | None:
    if not isinstance(entry, dict):
        ctx.error(kp, f"a softphone entry must be a mapping, got {v.type_name(entry)}")
        return None
    before = len(ctx.diags)
    layers: dict[str, Sourced] = dict(host.defaults)
    keypaths: dict[str, KeyPath] = {
        leaf: host.var_keypaths[f"softphone_defaults.{leaf}"] for leaf in host.defaults
    }
    name = str(entry.get("name") or f"Softphone {index}")
    origin = f"softphone {name!r} of {host.name}"
    misspelt = False
    for leaf, value, lkp in flatten(entry, kp, ACCOUNT_KEYS):
        if leaf is None:
            ctx.error(lkp, str(value))
            misspelt = True
        else:
            layers[leaf] = Sourced(value, ctx.doc.where(lkp), origin)
            keypaths[leaf] = lkp
    profile_name = _profile_name(ctx, layers, keypaths, kp)
    if profile_name is None:
        return None
    values = dict(ctx.profile_values(profile_name))
    for leaf, src in layers.items():
        values[leaf] = _parse_layer(ctx, leaf, src, keypaths[leaf], check)
    if not misspelt:  # "missing 'username'" would only repeat "unknown key 'usrname'"
        _phone_rules(ctx, values, keypaths, kp, profile_name)
    ca_path = _ca_file(ctx, values, keypaths)
    if ctx.failed(before):
        return None
    return PhoneDraft(index, name, kp, ctx.doc.where(kp), values, profile_name, ca_path)


@functools.cache
def _defaults() -> dict[str, Sourced]:
    """Every field's default, built once: a phone copies the dict, not 26 new objects."""
    return {leaf: Sourced(spec.default, None, "default") for leaf, spec in FIELDS.items()}


def _ca_file(ctx: _Ctx, values: dict[str, Sourced], keypaths: dict[str, KeyPath]) -> str | None:
    """Resolve tls.ca_file beside its file; unusable is an error only where it is used."""
    src = values["tls.ca_file"]
    if not isinstance(src.value, str):
        return None
    path = resolve_beside(src.value, src.location, ctx.base)
    if path not in ctx.ca_checked:
        ctx.ca_checked[path] = ca_file_problem(path)
    problem = ctx.ca_checked[path]
    if problem is None:
        return path
    unused = _ca_unused(values)
    severity: Literal["error", "warning"] = "warning" if unused else "error"
    message = f"{problem} (not used while {unused})" if unused else problem
    kp = keypaths.get("tls.ca_file")
    if kp is not None:
        d = ctx.doc.diag(kp, message)
        ctx.diags.append(Diagnostic(d.message, d.location, d.keypath, severity))
    else:
        ctx.diags.append(Diagnostic(message, src.location, "tls.ca_file", severity))
    return path


def _ca_unused(values: dict[str, Sourced]) -> str | None:
    if values["transport"].value != "tls":
        return f"transport is {values['transport'].value}"
    if not values["tls.verify"].value:
        return "tls.verify is off"
    return None


def _profile_name(
    ctx: _Ctx, layers: dict[str, Sourced], keypaths: dict[str, KeyPath], kp: KeyPath
) -> str | None:
    src = layers.get("profile")
    if src is None:
        ctx.error(kp, "no profile: set 'profile' in the entry or in softphone_defaults")
        return None
    if not isinstance(src.value, str) or src.value not in ctx.lib:
        ctx.error(keypaths["profile"], ctx.lib.unknown_message(str(src.value)))
        return None
    return src.value


def _parse_layer(ctx: _Ctx, leaf: str, src: Sourced, kp: KeyPath, check: bool) -> Sourced:
    if isinstance(src.value, TemplateFailed):
        return src  # reported where the template failed
    if leaf == "password":
        secret = _secret(ctx, src, kp, check)
        return Sourced(secret, src.location, src.origin)
    if leaf in ("name", "profile", "username", "auth_id", "cid_name", "code_name"):
        try:
            text = v.as_str(src.value)
        except v.FieldError as exc:
            ctx.error(kp, str(exc))
            return src
        # usually the text as written: keep its Sourced (making a frozen one is not free)
        return src if text is src.value else Sourced(text, src.location, src.origin)
    if src.value is None and FIELDS[leaf].nullable:
        return src
    try:
        value, hint = ctx.parse_field(leaf, src.value)
    except v.FieldError as exc:
        ctx.error(kp, str(exc))
        return src
    if hint:
        ctx.warn(kp, hint)
    return Sourced(value, src.location, src.origin)


def _parse_field(leaf: str, value: Any) -> tuple[Any, str | None]:
    parsed = FIELDS[leaf].parse(value)
    hint = v.ipv6_port_hint(value, PORT_HINTS[leaf]) if leaf in PORT_HINTS else None
    return parsed, hint


def _phone_rules(
    ctx: _Ctx,
    values: dict[str, Sourced],
    keypaths: dict[str, KeyPath],
    kp: KeyPath,
    profile: str,
) -> None:
    if "username" not in values:
        ctx.error(kp, "missing 'username' (the extension or SIP user of this softphone)")
    if values["registrar"].value is None:
        ctx.error(kp, f"no registrar: set it in profile {profile!r} or in this entry")
    if values["register"].value and "password" not in values:
        ctx.error(kp, "missing 'password' (env:NAME, file:PATH, a vault or a literal)")
    elif values["register"].value:
        secret = values["password"].value
        if isinstance(secret, Secret) and secret.is_literal and not secret.reveal():
            ctx.error(
                keypaths.get("password", kp),
                "empty password for a registering softphone; the PBX would refuse it",
            )
    stun = values["stun.server"]
    if stun.value is not None and values["stun.enabled"].origin == "default":
        values["stun.enabled"] = Sourced(True, stun.location, stun.origin)
    if values["stun.enabled"].value and stun.value is None:
        ctx.error(kp, "STUN is enabled but no stun.server is set")
    if values["srtp"].value and values["transport"].value != "tls":
        where = keypaths.get("srtp", kp)
        ctx.warn(where, "SRTP over UDP/TCP sends its SDES keys in clear text; use transport tls")
    expiry = values["registration_timeout"]
    if isinstance(expiry.value, int) and expiry.value < 60:
        ctx.warn(
            keypaths.get("registration_timeout", kp),
            "registration_timeout below 60 s is "
            "refused by many registrars (423 Interval Too Brief)",
        )


# -- core-wide settings ---------------------------------------------------
def _core_settings(
    ctx: _Ctx, host: HostVars, phones: list[PhoneDraft], interface: str
) -> CoreSettings | None:
    chosen: dict[str, Any] = {leaf: FIELDS[leaf].default for leaf in CORE_FIELDS}
    ok = True
    for leaf in CORE_FIELDS:
        first: PhoneDraft | None = None
        for phone in phones:
            if first is None:
                first = phone
                chosen[leaf] = phone.values[leaf].value
            elif phone.values[leaf].value != chosen[leaf] and _matters(leaf, chosen):
                _conflict(ctx, host, leaf, first, phone)
                ok = False
                break
    if not phones:
        for leaf in CORE_FIELDS:
            if leaf in host.defaults:
                kp = host.var_keypaths[f"softphone_defaults.{leaf}"]
                before = len(ctx.diags)
                parsed = _parse_layer(ctx, leaf, host.defaults[leaf], kp, False)
                if len(ctx.diags) > before:
                    ok = False
                elif parsed.value is not None:
                    chosen[leaf] = parsed.value
    if not ok:
        return None
    return CoreSettings(
        interface=interface,
        sip_port=chosen["sip_port"],
        srtp=chosen["srtp"],
        dtmf_mode=chosen["dtmf.mode"],
        dtmf_payload_type=chosen["dtmf.payload_type"],
        stun_enabled=chosen["stun.enabled"],
        stun_server=chosen["stun.server"],
        codecs=tuple(chosen["codecs"]),
    )


def _matters(leaf: str, chosen: dict[str, Any]) -> bool:
    """A payload type is moot with SIP INFO, a STUN server with STUN off."""
    if leaf == "dtmf.payload_type":
        return bool(chosen["dtmf.mode"] == "rfc2833")
    if leaf == "stun.server":
        return bool(chosen["stun.enabled"])
    return True


def _conflict(ctx: _Ctx, host: HostVars, leaf: str, a: PhoneDraft, b: PhoneDraft) -> None:
    sa, sb = a.values[leaf], b.values[leaf]
    ctx.diags.append(
        Diagnostic(
            f"core-wide setting {leaf} differs on {host.name}: softphone {a.name!r} gets "
            f"{_show(sa.value)} from {sa.describe()}, softphone {b.name!r} gets "
            f"{_show(sb.value)} from {sb.describe()}; the core has one {leaf} for all "
            "its softphones",
            b.location,
            format_keypath(b.keypath),
        )
    )


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(x) for x in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _apply_command(ctx: _Ctx, host: HostVars, phones: list[PhoneDraft]) -> str | None:
    first: PhoneDraft | None = None
    for phone in phones:
        if first is None:
            first = phone
        elif phone.values["apply_command"].value != first.values["apply_command"].value:
            if "qsipctl_apply_command" not in host.vars:
                _conflict(ctx, host, "apply_command", first, phone)
            return None
    return first.values["apply_command"].value if first else None


def _softphone(p: PhoneDraft) -> Softphone:
    val = {leaf: src.value for leaf, src in p.values.items()}
    registrar: HostPort = val["registrar"]
    outbound: HostPort | None = val["outbound_proxy"]
    password = val.get("password") or Secret.parse("")
    return Softphone(
        index=p.index,
        name=p.name,
        profile=p.profile,
        username=val["username"],
        cid_name=val.get("cid_name"),
        transport=val["transport"],
        proxy=outbound or registrar,
        backup_proxy=val["backup_proxy"],
        register=val["register"],
        auth_id=val.get("auth_id") or val["username"],
        password=password,
        domain=val["domain"] or registrar.host,
        registration_timeout=val["registration_timeout"],
        tls=TlsOptions(p.ca_path, val["tls.verify"], val["tls.server_name"], val["tls.ca_file"]),
        expectations=Expectations(
            session_timer=val["session_timer.expires"],
            min_se=val["session_timer.min_se"],
            keepalive=val["keepalive.method"],
            keepalive_interval=val["keepalive.interval"],
            rtp_port_range=val["rtp_port_range"],
            registrar=registrar,
            outbound_proxy=outbound,
            notes=tuple(val["notes"]),
            pbx_networks=tuple(val["pbx_networks"]),
            test_number=val["test_number"],
        ),
        source=p.location,
        code_name=val.get("code_name"),
    )
