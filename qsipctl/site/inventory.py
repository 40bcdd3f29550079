"""The Ansible YAML inventory shape, with qsipctl's precedence rules.

``all:`` -> ``vars`` / ``children`` / ``hosts``, nested to any depth, so an
existing Ansible YAML inventory loads unchanged.  Variables resolve the way
Ansible orders them (all < parent group < child group < host), with two
deliberate differences that turn silent surprises into errors:

* two groups of equal depth and ``ansible_group_priority`` that give a host
  different values for one variable (Ansible picks alphabetically);
* a host listed twice with different values for one host variable (Ansible
  keeps the last one).

``softphone_defaults`` merges leaf by leaf across levels, so a site group can
set the profile and a child group only the domain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from qsipctl.errors import Diagnostic, Location
from qsipctl.site.fields import ACCOUNT_KEYS, flatten
from qsipctl.site.profiles import Sourced
from qsipctl.site.ranges import MAX_INVENTORY_HOSTS, RangeError, expand
from qsipctl.site.secrets import secret_like
from qsipctl.site.suggest import did_you_mean
from qsipctl.site.values import FieldError, as_host, type_name
from qsipctl.site.yamlsrc import KeyPath, YamlDoc, format_keypath

HOST_DEPTH = 10**6
GROUP_KEYS = ("vars", "children", "hosts")
_GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

CONNECTION_VARS = (
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_ssh_private_key_file",
    "ansible_password",
    "ansible_connection",
    "qsipctl_connector",
    "qsipctl_jump_host",
    "qsipctl_known_hosts",
    "qsipctl_config_path",
    "qsipctl_apply_command",
    "qsipctl_backup_keep",
    "qsipctl_timeout",
    "qsipctl_local_dir",
)
CORE_VARS = ("qsys_model", "qsys_interface", "qsys_softphone_limit", "ansible_group_priority")
QRC_VARS = ("qsys_qrc_host", "qsys_qrc_port", "qsys_qrc_user", "qsys_qrc_password")
OUR_VARS = (*CONNECTION_VARS, *CORE_VARS, *QRC_VARS, "softphones", "softphone_defaults")
# Ansible variables that are legitimate but not ours: never "did you mean" them.
ANSIBLE_VARS = (
    "ansible_ssh_host",
    "ansible_ssh_port",
    "ansible_ssh_user",
    "ansible_ssh_pass",
    "ansible_ssh_password",
    "ansible_private_key_file",
    "ansible_ssh_executable",
    "ansible_ssh_pipelining",
    "ansible_ssh_timeout",
    "ansible_timeout",
    "ansible_host_key_checking",
    "ansible_scp_extra_args",
    "ansible_sftp_extra_args",
    "ansible_sftp_batch_mode",
    "ansible_become_method",
    "ansible_become_pass",
    "ansible_become_exe",
    "ansible_become_flags",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "ansible_python_interpreter",
    "ansible_become",
    "ansible_become_user",
    "ansible_become_password",
    "ansible_network_os",
    "ansible_shell_type",
)
DEFAULTS_EXTRA = tuple(k for k in ACCOUNT_KEYS if k != "name")


@dataclass
class VarDef:
    value: Any
    keypath: KeyPath
    location: Location
    owner: str  # "group lobby", "host core-01"


@dataclass
class Group:
    name: str
    location: Location
    vars: dict[tuple[str, ...], VarDef] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    depth: int = 0
    host_set: set[str] = field(default_factory=set, repr=False)  # `hosts`, for lookups


@dataclass
class HostDef:
    name: str
    location: Location
    keypath: KeyPath
    vars: dict[tuple[str, ...], VarDef] = field(default_factory=dict)


@dataclass
class HostVars:
    """A host with its variables resolved; ``defaults`` are softphone_defaults leaves."""

    name: str
    location: Location
    keypath: KeyPath
    groups: tuple[str, ...]
    vars: dict[str, Sourced]
    defaults: dict[str, Sourced]
    var_keypaths: dict[str, KeyPath]


@dataclass
class Inventory:
    doc: YamlDoc
    hosts: list[HostVars]
    groups: dict[str, tuple[str, ...]]
    diagnostics: list[Diagnostic]


PORT_VARS = {"ansible_port", "ansible_ssh_port"}
_BRACKETED_PORT = re.compile(r"^\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)\]:([0-9]+)$")
_NAME_PORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])+):([0-9]+)$")


def split_host_port(pattern: str) -> tuple[str, int | None]:
    """``core1:2222`` / ``[2001:db8::1]:2222`` -> name and SSH port, as Ansible's parse_address.

    Ansible's YAML inventory accepts a port in the host key; an inventory that
    uses it must load here too.  A bare IPv6 address has no port.
    """
    match = _BRACKETED_PORT.match(pattern) or _NAME_PORT.match(pattern)
    if match is None:
        return pattern, None
    port = int(match.group(2))
    if not 1 <= port <= 65535:
        raise FieldError(f"port {port} in host {pattern!r} is out of range: expected 1-65535")
    return match.group(1), port


def parse_inventory(doc: YamlDoc) -> Inventory:
    return _Parser(doc).run()


class _Parser:
    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.diags: list[Diagnostic] = []
        self.groups: dict[str, Group] = {}
        self.hosts: dict[str, HostDef] = {}
        self._ties: set[tuple[str, str, tuple[str, ...]]] = set()
        self._positions: dict[str, int] = {}
        self._parents: dict[str, list[Group]] | None = None  # built once, after parsing
        self._direct: dict[str, list[Group]] = {}
        self._too_many = False  # the overall host cap was hit (reported once)

    def error(self, kp: KeyPath, message: str) -> None:
        self.diags.append(self.doc.diag(kp, message))

    def warn(self, kp: KeyPath, message: str) -> None:
        d = self.doc.diag(kp, message)
        self.diags.append(Diagnostic(d.message, d.location, d.keypath, "warning"))

    def run(self) -> Inventory:
        data = self.doc.data
        if data is None or data == {}:
            self.error((), "the inventory is empty: expected 'all:' with hosts or children")
            return self._result([])
        if not isinstance(data, dict):
            self.error((), f"the inventory must be a mapping ('all:' ...), got {type_name(data)}")
            return self._result([])
        self._group("all", data.get("all"), ("all",))
        for name, body in data.items():
            if name != "all":
                self._group(str(name), body, (name,))
                self._link("all", str(name))
        if not self.hosts and not any(d.severity == "error" for d in self.diags):
            self.error((), "the inventory has no hosts")
        if self._find_cycle():
            return self._result([])
        self._depths()
        return self._result(self._resolve_all())

    def _result(self, hosts: list[HostVars]) -> Inventory:
        members = {g: tuple(self._members(g)) for g in self.groups}
        return Inventory(self.doc, hosts, members, self.diags)

    def _link(self, parent: str, child: str) -> None:
        children = self.groups[parent].children
        if child not in children:
            children.append(child)

    # -- structure --------------------------------------------------------
    def _group(self, name: str, body: Any, kp: KeyPath) -> None:
        if not _GROUP_NAME.match(name):
            self.error(kp, f"invalid group name {name!r}: use letters, digits, '_' and '-'")
            return
        group = self.groups.setdefault(name, Group(name, self.doc.where(kp)))
        if body is None:
            return
        if not isinstance(body, dict):
            self.error(
                kp, f"a group must be a mapping of vars/children/hosts, got {type_name(body)}"
            )
            return
        for key, value in body.items():
            if key == "vars":
                self._vars(group.vars, value, (*kp, "vars"), f"group {name}")
            elif key == "children":
                self._children(group, value, (*kp, "children"))
            elif key == "hosts":
                self._hosts(group, value, (*kp, "hosts"))
            else:
                self.error((*kp, key), _group_key_message(str(key)))

    def _children(self, group: Group, value: Any, kp: KeyPath) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            self.error(kp, f"children must be a mapping of group names, got {type_name(value)}")
            return
        for child, body in value.items():
            child = str(child)
            if child == "all":
                self.error((*kp, child), "'all' cannot be a child group")
                continue
            self._group(child, body, (*kp, child))
            if child in self.groups:
                self._link(group.name, child)

    def _hosts(self, group: Group, value: Any, kp: KeyPath) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            self.error(kp, f"hosts must be a mapping of host names, got {type_name(value)}")
            return
        for pattern, body in value.items():
            hkp = (*kp, pattern)
            try:
                bare, port = split_host_port(str(pattern))
                names = expand(bare)
            except (RangeError, FieldError) as exc:
                self.error(hkp, str(exc))
                continue
            if body is not None and not isinstance(body, dict):
                self.error(hkp, f"host variables must be a mapping, got {type_name(body)}")
                body = None
            if port is not None and not (body and PORT_VARS & body.keys()):
                body = {"ansible_port": port, **(body or {})}
            if not self._room_for(names, hkp):
                return
            for name in names:
                self._host(group, name, body, hkp)

    def _room_for(self, names: list[str], kp: KeyPath) -> bool:
        """Each range is capped; many capped ranges together must be too."""
        if self._too_many:
            return False
        total = len(self.hosts) + len(set(names) - self.hosts.keys())
        if total > MAX_INVENTORY_HOSTS:
            self._too_many = True
            self.error(
                kp,
                f"the inventory would have {total} hosts with this entry; qsipctl loads at "
                f"most {MAX_INVENTORY_HOSTS} per inventory: split the site into several files",
            )
        return not self._too_many

    def _host(self, group: Group, name: str, body: dict[str, Any] | None, kp: KeyPath) -> None:
        try:
            as_host(name)
        except FieldError:
            self.error(kp, f"invalid host name {name!r}")
            return
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = HostDef(name, self.doc.where(kp), kp)
        if name not in group.host_set:
            group.host_set.add(name)
            group.hosts.append(name)
        misplaced = [k for k in (body or {}) if k in GROUP_KEYS]
        for key in misplaced:
            self.error(
                (*kp, key),
                f"a host has no {key!r}: host variables go directly under the host name",
            )
        if body and not misplaced:
            fresh: dict[tuple[str, ...], VarDef] = {}
            self._vars(fresh, body, kp, f"host {name}")
            self._merge_host_vars(host, fresh)

    def _merge_host_vars(self, host: HostDef, fresh: dict[tuple[str, ...], VarDef]) -> None:
        for key, new in fresh.items():
            old = host.vars.get(key)
            if old is not None and old.value != new.value:
                self.error(
                    new.keypath,
                    f"host {host.name} is listed twice with different values for "
                    f"{'.'.join(key)}: {_show(old.value, key)} at {old.location} and "
                    f"{_show(new.value, key)}"
                    " here; a host has one value per variable (move it to a group)",
                )
                continue
            host.vars[key] = new

    def _vars(
        self, target: dict[tuple[str, ...], VarDef], value: Any, kp: KeyPath, owner: str
    ) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            self.error(kp, f"vars must be a mapping, got {type_name(value)}")
            return
        for key, item in value.items():
            key = str(key)
            vkp = (*kp, key)
            if not self._known_var(key, vkp):
                continue
            _warn_template(self, item, vkp)
            if key == "softphone_defaults":
                self._defaults(target, item, vkp, owner)
            else:
                target[(key,)] = VarDef(item, vkp, self.doc.where(vkp), owner)

    def _known_var(self, key: str, kp: KeyPath) -> bool:
        if key in OUR_VARS or key in ANSIBLE_VARS:
            return True
        ours = key.startswith(("qsipctl_", "qsys_"))
        hint = did_you_mean(key, OUR_VARS, cutoff=0.6 if ours else 0.85)
        if ours or hint:
            self.error(kp, f"unknown variable {key!r}{hint}")
            return False
        return True  # someone else's variable (Ansible roles, ...): kept, unused

    def _defaults(
        self, target: dict[tuple[str, ...], VarDef], value: Any, kp: KeyPath, owner: str
    ) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            self.error(kp, f"softphone_defaults must be a mapping, got {type_name(value)}")
            return
        for leaf, item, lkp in flatten(value, kp, DEFAULTS_EXTRA):
            if leaf is None:
                self.error(lkp, str(item))
            else:
                target[("softphone_defaults", leaf)] = VarDef(item, lkp, self.doc.where(lkp), owner)

    # -- graph ------------------------------------------------------------
    def _find_cycle(self) -> bool:
        state: dict[str, int] = {}

        def visit(name: str, trail: list[str]) -> list[str] | None:
            state[name] = 1
            for child in self.groups[name].children:
                if state.get(child) == 1:
                    return [*trail, name, child]
                if child not in state:
                    found = visit(child, [*trail, name])
                    if found:
                        return found
            state[name] = 2
            return None

        for name in list(self.groups):
            if name not in state:
                cycle = visit(name, [])
                if cycle:
                    start = cycle.index(cycle[-1])
                    loop = " -> ".join(cycle[start:])
                    loc = self.groups[cycle[-1]].location
                    self.diags.append(Diagnostic(f"group nesting loops: {loop}", loc))
                    return True
        return False

    def _depths(self) -> None:
        order = self._topological()
        for name in order:
            for child in self.groups[name].children:
                self.groups[child].depth = max(
                    self.groups[child].depth, self.groups[name].depth + 1
                )

    def _topological(self) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for child in self.groups[name].children:
                visit(child)
            out.append(name)

        for name in self.groups:
            visit(name)
        return out[::-1]

    def _members(self, group: str) -> list[str]:
        names: list[str] = []
        found: set[str] = set()
        stack = [group]
        seen: set[str] = set()
        while stack:
            g = stack.pop(0)
            if g in seen or g not in self.groups:
                continue
            seen.add(g)
            fresh = [h for h in self.groups[g].hosts if h not in found]
            found.update(fresh)
            names.extend(fresh)
            stack.extend(self.groups[g].children)
        order = self._order()
        return sorted(names, key=order.__getitem__)

    def _order(self) -> dict[str, int]:
        if len(self._positions) != len(self.hosts):
            self._positions = {name: i for i, name in enumerate(self.hosts)}
        return self._positions

    def _host_groups(self, host: str) -> list[Group]:
        if self._parents is None:
            self._parents = {}
            for g in self.groups.values():
                for child in g.children:
                    self._parents.setdefault(child, []).append(g)
                for h in g.hosts:
                    self._direct.setdefault(h, []).append(g)
        parents = self._parents
        found: dict[str, Group] = {"all": self.groups["all"]}
        stack = list(self._direct.get(host, []))
        while stack:
            g = stack.pop()
            if g.name not in found:
                found[g.name] = g
                stack.extend(parents.get(g.name, []))
        return sorted(found.values(), key=lambda g: (g.depth, g.name))

    # -- precedence -------------------------------------------------------
    def _resolve_all(self) -> list[HostVars]:
        return [self._resolve(host) for host in self.hosts.values()]

    def _resolve(self, host: HostDef) -> HostVars:
        groups = self._host_groups(host.name)
        keys = {k for g in groups for k in g.vars} | set(host.vars)
        resolved: dict[tuple[str, ...], VarDef] = {}
        for key in sorted(keys):
            chosen = host.vars.get(key) or self._from_groups(host.name, key, groups)
            resolved[key] = chosen
        plain = {k[0]: v for k, v in resolved.items() if len(k) == 1}
        defaults = {k[1]: v for k, v in resolved.items() if len(k) == 2}
        return HostVars(
            name=host.name,
            location=host.location,
            keypath=host.keypath,
            groups=tuple(g.name for g in groups),
            vars={k: Sourced(v.value, v.location, v.owner) for k, v in plain.items()},
            defaults={k: Sourced(v.value, v.location, v.owner) for k, v in defaults.items()},
            var_keypaths={
                **{k: v.keypath for k, v in plain.items()},
                **{f"softphone_defaults.{k}": v.keypath for k, v in defaults.items()},
            },
        )

    def _from_groups(self, host: str, key: tuple[str, ...], groups: list[Group]) -> VarDef:
        ranked = sorted(
            (g for g in groups if key in g.vars), key=lambda g: (g.depth, _priority(g), g.name)
        )
        best = ranked[-1]
        rank = (best.depth, _priority(best))
        ties = [g for g in ranked if (g.depth, _priority(g)) == rank]
        for other in ties[:-1]:
            if other.vars[key].value != best.vars[key].value:
                self._tie_error(host, key, other, best)
                break
        return best.vars[key]

    def _tie_error(self, host: str, key: tuple[str, ...], a: Group, b: Group) -> None:
        if (a.name, b.name, key) in self._ties:
            return
        self._ties.add((a.name, b.name, key))
        va, vb = a.vars[key], b.vars[key]
        message = (
            f"host {host} is in groups {a.name} and {b.name}, which have equal precedence "
            f"(depth {a.depth}) but set {'.'.join(key)} differently: {_show(va.value, key)} at "
            f"{va.location} vs {_show(vb.value, key)}; set ansible_group_priority on one group "
            f"or set the variable on the host"
        )
        self.diags.append(Diagnostic(message, vb.location, format_keypath(vb.keypath)))


def _group_key_message(key: str) -> str:
    if key in OUR_VARS or key in ANSIBLE_VARS:
        return f"{key!r} is a variable: in a group it goes under 'vars:'"
    hint = did_you_mean(key, GROUP_KEYS)
    return f"unknown key {key!r} in a group{hint}; expected vars, children or hosts"


def _warn_template(parser: _Parser, value: Any, kp: KeyPath, depth: int = 0) -> None:
    """Ansible would expand ``{{ ... }}``; qsipctl does not, so say so once per value."""
    if isinstance(value, str) and "{{" in value:
        parser.warn(kp, "Jinja templates are not expanded by qsipctl; the text is used as is")
    elif isinstance(value, dict) and depth < 8:
        for k, v in value.items():
            _warn_template(parser, v, (*kp, k), depth + 1)
    elif isinstance(value, list) and depth < 8:
        for i, v in enumerate(value):
            _warn_template(parser, v, (*kp, i), depth + 1)


def _priority(group: Group) -> int:
    d = group.vars.get(("ansible_group_priority",))
    if d is None:
        return 1
    return d.value if isinstance(d.value, int) and not isinstance(d.value, bool) else 1


def _show(value: Any, key: tuple[str, ...] = ()) -> str:
    if any(secret_like(part) for part in key):
        return "(a secret)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
