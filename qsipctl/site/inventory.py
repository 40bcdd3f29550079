"""The Ansible inventory model (YAML and INI), with Ansible's own precedence and order.

An existing Ansible inventory must load as it is and give every host the
values ``ansible-inventory --host`` gives it, in the order ``ansible
--list-hosts`` lists them (that order decides ``g[0]`` and ``--serial``
batches).  The rules, from ansible-core 2.19 and checked against it by
tests/integration/test_ansible_fidelity.py:

* groups that no group lists as a child become children of ``all`` (after
  ``ungrouped``, which is always its first child); a host in no group but
  ``all`` is in ``ungrouped``;
* a host's variables are combined lowest first: ``all`` vars, the other
  groups' vars sorted by (depth, ``ansible_group_priority``, name), then
  ``group_vars/all``, then ``group_vars/GROUP`` in the same order, then the
  host's inventory vars, then ``host_vars/HOST``; equal depth and priority are
  decided by the group name (the alphabetically last wins), which is
  warned about only when it decides a qsipctl setting;
* a host listed twice keeps the last value of each variable.

One deliberate difference: ``softphone_defaults`` is merged leaf by leaf
across levels (Ansible would replace the whole mapping), so a site group can
set the profile and a child group only the domain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from qsipctl.errors import Diagnostic, Location
from qsipctl.site.fields import ACCOUNT_KEYS, flatten
from qsipctl.site.profiles import Sourced
from qsipctl.site.ranges import MAX_INVENTORY_HOSTS, RangeError, expand
from qsipctl.site.secrets import secret_like
from qsipctl.site.suggest import did_you_mean
from qsipctl.site.values import FieldError, as_host, type_name
from qsipctl.site.vault import VaultLocked, VaultStr
from qsipctl.site.yamlsrc import KeyPath, YamlDoc

GROUP_KEYS = ("vars", "children", "hosts")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

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
# The variables whose value qsipctl acts on: a tie-break deciding one of them is worth a warning.
SETTINGS = frozenset(OUR_VARS) - {"ansible_group_priority"}


@dataclass
class VarDef:
    """One variable as written, with where and by whom, for precedence and messages."""

    value: Any
    keypath: KeyPath
    location: Location
    owner: str  # "group lobby", "host core-01", "group_vars/lobby.yml"


Vars = dict[tuple[str, ...], VarDef]


@dataclass
class Group:
    """An inventory group as parsed: its own variables, its place in the group tree."""

    name: str
    location: Location
    vars: Vars = field(default_factory=dict)  # from the inventory file(s)
    file_vars: Vars = field(default_factory=dict)  # from group_vars/
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    depth: int = 0
    priority: int = 1
    host_set: set[str] = field(default_factory=set, repr=False)  # `hosts`, for lookups


@dataclass
class HostDef:
    """A host as parsed, before its groups' variables are merged into it."""

    name: str
    location: Location
    keypath: KeyPath
    vars: Vars = field(default_factory=dict)
    file_vars: Vars = field(default_factory=dict)  # from host_vars/
    direct: list[str] = field(default_factory=list)  # groups that list the host


@dataclass
class HostVars:
    """A host with its variables resolved; ``defaults`` are softphone_defaults leaves.

    ``vars`` hold qsipctl's settings templated (Jinja2), everything else as
    written; ``raw`` is every variable as written, as ``ansible-inventory``
    shows it.
    """

    name: str
    location: Location
    keypath: KeyPath
    groups: tuple[str, ...]
    vars: dict[str, Sourced]
    defaults: dict[str, Sourced]
    var_keypaths: dict[str, KeyPath]
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Inventory:
    """The parsed inventory: selected hosts resolved, groups in Ansible's order."""

    doc: YamlDoc
    hosts: list[HostVars]  # resolved: the selected hosts, in Ansible's order
    groups: dict[str, tuple[str, ...]]  # every group -> its hosts, in Ansible's order
    diagnostics: list[Diagnostic]
    order: tuple[str, ...] = ()  # every host, in the order of ``ansible all --list-hosts``
    group_tree: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group -> children


@dataclass(frozen=True, slots=True)
class InventorySource:
    """One inventory file's data (several for a directory inventory)."""

    data: Any
    root: KeyPath  # () for the first file, (SourceTag,) for the others


# (kind "group"/"host", name) -> [(data, root keypath, file name)] of group_vars/host_vars files
VarsLoader = Callable[[str, str], list[tuple[Any, KeyPath, str]]]
# (hosts in Ansible's order, group -> members, hosts in the order first listed) -> selected
Selector = Callable[[tuple[str, ...], dict[str, tuple[str, ...]], tuple[str, ...]], list[str]]
# (host, resolved vars, diagnostics) -> templated vars: see qsipctl.site.template
Templater = Callable[["HostVars", "_Parser"], None]


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


def parse_inventory(
    doc: YamlDoc,
    sources: Iterable[InventorySource] | None = None,
    vars_loader: VarsLoader | None = None,
    select: Selector | None = None,
    templater: Templater | None = None,
) -> Inventory:
    """Structure, order and (for the selected hosts) resolved variables of an inventory.

    ``doc`` holds the positions of every file; ``sources`` the inventory
    files' data (default: ``doc`` alone).  ``select`` picks hosts before any
    host is resolved, so ``--limit`` keeps other hosts' problems out.
    """
    parser = _Parser(doc, vars_loader, templater)
    return parser.run(
        list(sources) if sources is not None else [InventorySource(doc.data, ())], select
    )


class _Parser:
    def __init__(
        self, doc: YamlDoc, vars_loader: VarsLoader | None, templater: Templater | None
    ) -> None:
        self.doc = doc
        self.vars_loader = vars_loader
        self.templater = templater
        self.diags: list[Diagnostic] = []
        self.groups: dict[str, Group] = {}
        self.hosts: dict[str, HostDef] = {}
        self._warned: set[str] = set()
        self._too_many = False  # the overall host cap was hit (reported once)
        self._members: dict[str, tuple[str, ...]] = {}

    def error(self, kp: KeyPath, message: str) -> None:
        self.diags.append(self.doc.diag(kp, message))

    def warn(self, kp: KeyPath, message: str) -> None:
        d = self.doc.diag(kp, message)
        if d.format() not in self._warned:
            self._warned.add(d.format())
            self.diags.append(Diagnostic(d.message, d.location, d.keypath, "warning"))

    def run(self, sources: list[InventorySource], select: Selector | None) -> Inventory:
        self._new_group("all", Location(self.doc.path, 1, 1))
        self._new_group("ungrouped", Location(self.doc.path, 1, 1))
        self._link("all", "ungrouped")
        for source in sources:
            self._source(source)
        if not self.hosts and not any(d.severity == "error" for d in self.diags):
            self.error((), "the inventory has no hosts")
        if self._find_cycle():
            return Inventory(self.doc, [], {}, self.diags)
        self._reconcile()
        self._depths()
        self._load_vars_files()
        for group in self.groups.values():
            self._members[group.name] = tuple(self._walk_hosts(group.name))
        order = self._members["all"]
        chosen = list(order) if select is None else select(order, self._members, tuple(self.hosts))
        hosts = [self._resolve(self.hosts[name]) for name in chosen]
        tree = {g.name: tuple(g.children) for g in self.groups.values()}
        return Inventory(self.doc, hosts, dict(self._members), self.diags, order, tree)

    # -- structure --------------------------------------------------------
    def _source(self, source: InventorySource) -> None:
        data, root = source.data, source.root
        if data is None or data == {}:
            self.error(root, "the inventory is empty: expected 'all:' with hosts or children")
            return
        if not isinstance(data, dict):
            self.error(root, f"the inventory must be a mapping ('all:' ...), got {type_name(data)}")
            return
        for name, body in data.items():
            self._group(str(name), body, (*root, name))

    def _new_group(self, name: str, where: Location) -> Group:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name, where)
        return group

    def _link(self, parent: str, child: str) -> None:
        children = self.groups[parent].children
        if child not in children:
            children.append(child)
            self.groups[child].parents.append(parent)

    def _group(self, name: str, body: Any, kp: KeyPath) -> None:
        if not _GROUP_NAME.match(name):
            self.error(kp, f"invalid group name {name!r}: use letters, digits, '_', '-' and '.'")
            return
        if (name[0].isdigit() or "." in name) and name not in self.groups:
            self.warn(
                kp,
                f"group name {name!r} starts with a digit or contains a dot; Ansible accepts "
                "it with a warning, but Jinja cannot name it (groups.NAME)",
            )
        group = self._new_group(name, self.doc.where(kp))
        if body is None:
            return
        if not isinstance(body, dict):
            self.error(
                kp, f"a group must be a mapping of vars/children/hosts, got {type_name(body)}"
            )
            return
        for key, value in body.items():
            if key == "vars":
                self._group_vars(group, value, (*kp, "vars"))
            elif key == "children":
                self._children(group, value, (*kp, "children"))
            elif key == "hosts":
                self._hosts(group, value, (*kp, "hosts"))
            else:
                self.error((*kp, key), _group_key_message(str(key)))

    def _group_vars(self, group: Group, value: Any, kp: KeyPath) -> None:
        self._vars(group.vars, value, kp, f"group {group.name}")
        prio = group.vars.pop(("ansible_group_priority",), None)
        if prio is not None:  # a property of the group, not a host variable (as Ansible)
            try:
                group.priority = int(prio.value)
            except (TypeError, ValueError):
                self.error(
                    prio.keypath, f"ansible_group_priority must be an integer, got {prio.value!r}"
                )

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
            if not self._room_for(names, hkp):
                return
            fresh: Vars = {}
            misplaced = [k for k in (body or {}) if k in GROUP_KEYS]
            for key in misplaced:
                self.error(
                    (*hkp, key),
                    f"a host has no {key!r}: host variables go directly under the host name",
                )
            if body and not misplaced:
                self._vars(fresh, body, hkp, "host")
            for name in names:
                self._host(group, name, fresh, hkp, port)

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

    def _host(self, group: Group, name: str, fresh: Vars, kp: KeyPath, port: int | None) -> None:
        host = self.hosts.get(name)
        if host is None:
            try:
                as_host(name)
            except FieldError:
                self.error(kp, f"invalid host name {name!r}")
                return
            host = self.hosts[name] = HostDef(name, self.doc.where(kp), kp)
            if port is not None:  # as Ansible: the port of the host's first listing
                where = self.doc.where(kp)
                host.vars[("ansible_port",)] = VarDef(port, kp, where, f"host {name}")
        if name not in group.host_set:
            group.host_set.add(name)
            group.hosts.append(name)
            host.direct.append(group.name)
        for key, new in fresh.items():
            old = host.vars.get(key)
            if old is not None and old.value != new.value and key[0] in SETTINGS:
                self.warn(
                    new.keypath,
                    f"host {name} is listed twice with different values for {'.'.join(key)}: "
                    f"{_show(old.value, key)} at {old.location} and {_show(new.value, key)} "
                    "here; the last one wins (as in Ansible)",
                )
            host.vars[key] = VarDef(new.value, new.keypath, new.location, f"host {name}")

    def _vars(self, target: Vars, value: Any, kp: KeyPath, owner: str) -> None:
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

    def _defaults(self, target: Vars, value: Any, kp: KeyPath, owner: str) -> None:
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

    def _reconcile(self) -> None:
        """Ansible's reconcile_inventory: parentless groups under ``all``, ``ungrouped``."""
        for group in list(self.groups.values()):
            if group.name != "all" and not group.parents:
                self._link("all", group.name)
        ungrouped = self.groups["ungrouped"]
        for host in self.hosts.values():
            others = [g for g in host.direct if g not in ("all", "ungrouped")]
            if others and "ungrouped" in host.direct:
                host.direct.remove("ungrouped")
                ungrouped.hosts.remove(host.name)
                ungrouped.host_set.discard(host.name)
            elif not others and "ungrouped" not in host.direct:
                host.direct.append("ungrouped")
                ungrouped.hosts.append(host.name)
                ungrouped.host_set.add(host.name)
        for name in self.groups.keys() & self.hosts.keys():
            host = self.hosts[name]
            self.warn(
                host.keypath,
                f"{name!r} is both a host and a group; in a host pattern the host wins "
                "(as in Ansible)",
            )

    def _depths(self) -> None:
        for name in self._topological():
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

    def _walk_hosts(self, name: str) -> list[str]:
        """Ansible's Group.get_hosts(): breadth first over descendants, hosts deduplicated.

        Ansible walks each level from a set of groups, whose order follows
        memory addresses; qsipctl walks it in the order the groups were listed.
        """
        group = self.groups[name]
        ordered = [name, *group.children]
        seen: set[str] = set()
        level = list(dict.fromkeys(ordered))
        while level:
            seen.update(level)
            nxt: dict[str, None] = {}
            for g in level:
                for child in self.groups[g].children:
                    nxt.setdefault(child, None)
                    if child not in seen:
                        ordered.append(child)
            level = [c for c in nxt if c not in seen]
        hosts: dict[str, None] = {}
        for g in ordered:
            for h in self.groups[g].hosts:
                hosts.setdefault(h, None)
        return list(hosts)

    def _ancestors(self, host: HostDef) -> list[Group]:
        found: dict[str, Group] = {"all": self.groups["all"]}
        stack = [self.groups[g] for g in host.direct]
        while stack:
            g = stack.pop()
            if g.name not in found:
                found[g.name] = g
                stack.extend(self.groups[p] for p in g.parents)
        return sorted(found.values(), key=lambda g: (g.depth, g.priority, g.name))

    # -- group_vars/ and host_vars/ ----------------------------------------
    def _load_vars_files(self) -> None:
        if self.vars_loader is None:
            return
        for group in self.groups.values():
            for data, root, name in self.vars_loader("group", group.name):
                self._file_vars(group.file_vars, data, root, name)
        for host in self.hosts.values():
            for data, root, name in self.vars_loader("host", host.name):
                self._file_vars(host.file_vars, data, root, name)

    def _file_vars(self, target: Vars, data: Any, root: KeyPath, name: str) -> None:
        if data is None:
            return
        if not isinstance(data, dict):
            self.error(root, f"a vars file must be a mapping of variables, got {type_name(data)}")
            return
        self._vars(target, data, root, name)

    # -- precedence -------------------------------------------------------
    def _resolve(self, host: HostDef) -> HostVars:
        groups = self._ancestors(host)
        resolved: Vars = {}
        decided_by: dict[tuple[str, ...], tuple[tuple[int, int, int], Group]] = {}
        ties: dict[tuple[str, ...], tuple[Group, Group]] = {}
        for stage, attr in ((0, "vars"), (1, "file_vars")):
            for group in groups:
                rank = (stage, group.depth, group.priority)
                for key, new in getattr(group, attr).items():
                    old = decided_by.get(key)
                    if old is not None and old[0] == rank and resolved[key].value != new.value:
                        ties[key] = (old[1], group)
                    else:
                        ties.pop(key, None)
                    resolved[key] = new
                    decided_by[key] = (rank, group)
        for layer in (host.vars, host.file_vars):
            for key, new in layer.items():
                resolved[key] = new
                ties.pop(key, None)
        for key, (loser, winner) in ties.items():
            if key[0] in SETTINGS:
                self._tie_warning(host.name, key, loser, winner, resolved[key])
        return self._host_vars(host, groups, resolved)

    def _host_vars(self, host: HostDef, groups: list[Group], resolved: Vars) -> HostVars:
        plain = {k[0]: v for k, v in resolved.items() if len(k) == 1}
        defaults = {k[1]: v for k, v in resolved.items() if len(k) == 2}
        raw: dict[str, Any] = {k: v.value for k, v in plain.items()}
        if defaults:
            raw["softphone_defaults"] = _unflatten({k: v.value for k, v in defaults.items()})
        out = HostVars(
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
            raw=raw,
        )
        if self.templater is not None:
            self.templater(out, self)
        return out

    def _tie_warning(
        self, host: str, key: tuple[str, ...], loser: Group, winner: Group, chosen: VarDef
    ) -> None:
        lost = loser.vars.get(key) or loser.file_vars.get(key)
        where = f" at {lost.location}" if lost else ""
        self.warn(
            chosen.keypath,
            f"host {host} is in groups {loser.name} and {winner.name}, of equal depth "
            f"({winner.depth}) and priority, which set {'.'.join(key)} differently: "
            f"{winner.name} wins only because its name sorts last (as in Ansible), over "
            f"{_show(lost.value if lost else None, key)}{where}; set ansible_group_priority "
            "on one group or the variable on the host",
        )

    def members(self) -> dict[str, tuple[str, ...]]:
        """Every group's hosts in Ansible's order (complete once ``run`` has ordered them)."""
        return self._members


def _unflatten(leaves: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for leaf, value in leaves.items():
        head, dot, tail = leaf.partition(".")
        if dot:
            out.setdefault(head, {})[tail] = value
        else:
            out[leaf] = value
    return out


def _group_key_message(key: str) -> str:
    if key in OUR_VARS or key in ANSIBLE_VARS:
        return f"{key!r} is a variable: in a group it goes under 'vars:'"
    hint = did_you_mean(key, GROUP_KEYS)
    return f"unknown key {key!r} in a group{hint}; expected vars, children or hosts"


def _show(value: Any, key: tuple[str, ...] = ()) -> str:
    if any(secret_like(part) for part in key) or isinstance(value, VaultStr | VaultLocked):
        return "(a secret)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
