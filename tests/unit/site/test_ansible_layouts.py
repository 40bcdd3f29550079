"""The inventory layouts Ansible users have: INI, directories, group_vars/ and host_vars/.

The authority is the real ansible-core (tests/integration/test_ansible_fidelity.py);
these tests pin each rule on its own, with its message.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsipctl.errors import InvalidInput, UsageError
from qsipctl.site.ini import literal, parse_ini
from qsipctl.site.load import check_site, load_site
from qsipctl.site.patterns import select_names
from qsipctl.site.sources import read_inventory

PHONE = (
    "softphones: [{name: P, profile: generic, registrar: 192.0.2.5, username: '100', "
    "password: file:secrets/pw.txt}]\n"
)


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# -- INI -------------------------------------------------------------------
def test_ini_values_are_python_literals_on_host_lines_and_in_vars_sections():
    assert literal("23") == 23 and literal("'05'") == "05" and literal("True") is True
    assert literal("[1, (2, 3)]") == [1, [2, 3]] and literal("0100") == "0100"
    assert literal("Core 110f") == "Core 110f" and literal("1+2j") == "(1+2j)"
    doc = parse_ini(
        "solo a=1\n[g]\nh[1:2]:2222 x=\"'05'\" y='two words'  # comment\n[g:vars]\nv = 23\n"
        "w=Core Nano\n[p:children]\ng\n",
        "hosts",
    )
    assert doc.data["ungrouped"]["hosts"] == {"solo": {"a": 1}}
    assert doc.data["g"]["hosts"] == {"h[1:2]:2222": {"x": "05", "y": "two words"}}
    assert doc.data["g"]["vars"] == {"v": 23, "w": "Core Nano"}
    assert doc.data["p"]["children"] == {"g": None}
    assert str(doc.where(("g", "hosts", "h[1:2]:2222", "y"))) == "hosts:3:22"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[g:kids]\na\n", "hosts:1:1: section [g:kids] has unknown type 'kids'"),
        ("[g]\nh1 novalue\n", "hosts:2:4: expected key=value after the host name, got 'novalue'"),
        ("[g:vars]\nx=1\n", "hosts:1:1: section [g:vars] is for a group that is never declared"),
        ("[p:children]\nnope\n", "hosts:2:1: section [p:children] names group 'nope'"),
        ("[g]\n---\n", "'---' starts a YAML document"),
        ("[g]\nh1:\n", "host 'h1:' ends in ':'"),
        ("[bad group]\n", "invalid section '[bad group]'"),
    ],
)
def test_ini_mistakes_are_one_line_with_file_line_col(text: str, message: str):
    with pytest.raises(InvalidInput) as info:
        parse_ini(text, "hosts")
    assert message in info.value.lines()[0]


def test_ini_inventory_loads_with_group_vars_and_host_vars(files):
    write(
        files.root,
        "hosts",
        """\
        [lobby]
        core-[1:2] ansible_port=2201

        [lobby:vars]
        qsys_model=Core 110f
        """,
    )
    write(files.root, "group_vars/lobby.yml", PHONE)
    write(files.root, "group_vars/all/connection.yml", "ansible_user: fromall\n")
    write(files.root, "host_vars/core-2", "ansible_host: 192.0.2.22\nansible_port: 2299\n")
    site, diags = check_site(files.root / "hosts")
    assert site is not None, [d.format() for d in diags]
    c1, c2 = site.core("core-1"), site.core("core-2")
    assert (c1.address, c1.connection.port, c1.connection.user) == ("core-1", 2201, "fromall")
    assert (c2.address, c2.connection.port) == ("192.0.2.22", 2299)
    assert c1.softphones[0].username == "100"


def test_group_vars_all_beats_a_child_groups_inventory_vars_as_in_ansible(files):
    """Ansible's order: inventory group vars (all, then groups) < group_vars/all < group_vars/G."""
    write(
        files.root,
        "site.yml",
        """\
        all:
          children:
            lobby:
              vars: {ansible_user: from-inventory, qsys_model: Core Nano}
              hosts: {core1: }
        """,
    )
    write(files.root, "group_vars/all.yaml", "ansible_user: from-group-vars-all\n" + PHONE)
    site, diags = check_site(files.root / "site.yml")
    assert site is not None, [d.format() for d in diags]
    assert site.core("core1").connection.user == "from-group-vars-all"
    info = {h.name: h for h in site.hosts}["core1"]
    assert info.sources["ansible_user"].endswith("group_vars/all.yaml:1:1)")


def test_vars_file_lookup_order_name_then_yml_yaml_json(files):
    write(files.root, "site.yml", "all:\n  hosts:\n    core1: {qsys_model: Core Nano}\n")
    write(files.root, "group_vars/all.yml", "ansible_user: yml\n" + PHONE)
    write(files.root, "group_vars/all.json", '{"ansible_user": "json"}')
    site, _ = check_site(files.root / "site.yml")
    assert site is not None and site.core("core1").connection.user == "yml"


def test_a_directory_inventory_reads_every_file_and_skips_what_ansible_skips(files):
    inv = files.root / "inv"
    write(inv, "10-cores.ini", "[cores]\ncore1 qsys_model='Core Nano'\n")
    write(inv, "20-more.yml", "all:\n  hosts:\n    core2: {qsys_model: Core Nano}\n")
    write(inv, "notes.md", "[not] parsed\n")
    write(inv, "old.ini.bak", "[x]\nnope\n")
    write(inv, ".hidden", "[x]\nnope\n")
    write(inv, "group_vars/all.yml", PHONE.replace("file:secrets", "file:../secrets"))
    site, diags = check_site(inv)
    assert site is not None, [d.format() for d in diags]
    # Ansible lists all's own hosts before its child groups' (checked with ansible --list-hosts)
    assert [c.name for c in site.cores] == ["core2", "core1"]
    assert read_inventory(inv).files == [str(inv / "10-cores.ini"), str(inv / "20-more.yml")]


def test_unsupported_formats_name_the_supported_ones(files):
    toml = write(files.root, "hosts.toml", "[all.hosts]\n")
    _, diags = check_site(toml)
    assert "TOML inventories are not supported; qsipctl reads Ansible YAML" in diags[0].message
    script = write(files.root, "inventory.py", "#!/bin/sh\necho {}\n")
    script.chmod(0o755)
    _, diags = check_site(script)
    assert "executable inventory scripts are not run" in diags[0].message
    junk = write(files.root, "hosts", "key: [unclosed\n  other: x\n")
    _, diags = check_site(junk)
    assert len(diags) == 1 and "not an inventory (qsipctl reads Ansible YAML" in diags[0].message
    assert "invalid YAML" not in diags[0].message


def test_a_yml_file_keeps_the_precise_yaml_message(files):
    bad = write(files.root, "site.yml", "all:\n  hosts: [unclosed\n")
    _, diags = check_site(bad)
    assert diags[0].message.startswith("invalid YAML") and diags[0].location.line == 3


# -- mixed inventories and --limit -----------------------------------------
MIXED = """\
all:
  children:
    web:
      hosts:
        www1: {ansible_host: 192.0.2.80, http_port: 8080}
    switches:
      hosts:
        sw1: {ansible_network_os: ios}
    qsys_cores:
      vars: {qsys_model: Core Nano}
      hosts:
        core1:
          %s
        core2:
          ansible_host: 10.0.0.300
"""


def test_hosts_that_are_not_cores_are_skipped_not_rejected(files):
    site, diags = files.check(MIXED.replace("core2:\n          ansible_host: 10.0.0.300", "core2:")
                              % PHONE.strip())  # fmt: skip
    assert site is not None, [d.format() for d in diags]
    assert [c.name for c in site.cores] == ["core1", "core2"]
    assert site.others == ("www1", "sw1")
    assert [w.message for w in diags if "no softphones" in w.message] == [
        "core core2 has no softphones: provision would push a document with none"
    ]


def test_limit_selects_before_anything_is_validated(files):
    path = files.site(MIXED % PHONE.strip())
    with pytest.raises(InvalidInput, match=r"10\.0\.0\.300"):
        load_site(path)
    site = load_site(path, limit="qsys_cores:!core2")
    assert [c.name for c in site.cores] == ["core1"] and site.others == ()
    site = load_site(path, limit="web")
    assert site.cores == () and site.others == ("www1",)


# -- patterns ---------------------------------------------------------------
ORDER = ("a1", "a2", "b1", "web", "2001:db8::7", "c1")
GROUPS = {
    "all": ORDER,
    "rack_a": ("a1", "a2"),
    "rack_b": ("b1",),
    "web": ("c1",),
    "empty": (),
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("rack*[0]", ["a1"]),  # subscript applies to the glob's whole match
        ("rack*[1:]", ["a2", "b1"]),
        ("rack_a[-1]", ["a2"]),
        ("web", ["web"]),  # a host wins over a group of the same name
        ("web*", ["web", "c1"]),  # a glob matches both
        ("2001:db8::7", ["2001:db8::7"]),  # not split at its colons
        ("rack_a:&a*:!a1", ["a2"]),
        ("!rack_a", ["b1", "web", "2001:db8::7", "c1"]),
        ("c1,a1", ["a1", "c1"]),  # in inventory order, as --limit in Ansible
        ("empty:a1", ["a1"]),  # an existing empty group is not a typo
    ],
)
def test_patterns_as_ansible(pattern: str, expected: list[str]):
    assert select_names(ORDER, GROUPS, pattern) == expected


def test_limit_file_and_terms_that_match_nothing(tmp_path: Path):
    limit = tmp_path / "retry"
    limit.write_text("b1\n\nrack_a\n")
    assert select_names(ORDER, GROUPS, f"@{limit}") == ["a1", "a2", "b1"]
    with pytest.raises(UsageError, match="cannot read limit file"):
        select_names(ORDER, GROUPS, f"@{tmp_path / 'none'}")
    with pytest.raises(UsageError, match=r"term 'rak\*' matches no host or group"):
        select_names(ORDER, GROUPS, "rack_a:rak*")
    with pytest.raises(UsageError, match=r"index 5 is out of range \(2 hosts\)"):
        select_names(ORDER, GROUPS, "rack_a[5]")


def test_an_ini_file_named_yml_loads_as_ansible_falls_back_to_ini(files):
    path = write(files.root, "hosts.yml", "[lobby]\ncore1 qsys_model='Core Nano'\n")
    site, diags = check_site(path)
    assert site is not None and [c.name for c in site.cores] == ["core1"], diags


# -- no input raises anything but the module's own error ----------------------

INI_ALPHABET = st.sampled_from(list("[]:=#;'\" \n\tabg01-.*~!&@,"))


@settings(max_examples=300, deadline=None)
@given(st.text(INI_ALPHABET, max_size=80))
def test_ini_reader_raises_only_invalid_input(text: str):
    try:
        parse_ini(text, "hosts")
    except InvalidInput as exc:
        assert exc.lines() and all(line.startswith("hosts:") for line in exc.lines())


@settings(max_examples=300, deadline=None)
@given(st.text(INI_ALPHABET, min_size=1, max_size=40))
def test_patterns_raise_only_usage_errors(pattern: str):
    try:
        chosen = select_names(ORDER, GROUPS, pattern)
    except UsageError:
        return
    assert chosen and all(h in ORDER for h in chosen)
