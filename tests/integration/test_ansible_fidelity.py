"""qsipctl reads an Ansible inventory exactly as the real ansible-core does.

One estate, written the way Ansible users write them: a directory inventory
holding an INI file and a YAML file (and files Ansible ignores), group_vars/
and host_vars/ as files, extension-less files and directories, a
vault-encrypted vars file (format 1.2, vault id) and an inline ``!vault``
value (1.1) encrypted by the real ansible-vault, ``!unsafe``, Jinja templates
(``inventory_hostname``, ``default``, a filter, a vault variable), nested
children 3 deep, alphabetic ranges, strides, ports in host names, duplicates,
a tie decided by group name, ``ansible_group_priority``, a name that is both
host and group, a group name with a leading digit and a dot, an IPv6 host,
and hosts that are not Q-SYS cores.  ``ansible-inventory --list``, ``ansible
--list-hosts`` and ``ansible -m debug`` answer; qsipctl must give the same
hosts, in the same order, with the same variables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qsipctl.site.secrets import secret_like
from tests.fixtures.ansible import Ansible, ansible  # noqa: F401  (fixture)
from tests.fixtures.common import run_cli

pytestmark = pytest.mark.integration

INI = """\
# hosts before any section are in 'ungrouped'
ntp-1 ansible_host=198.18.0.123 stratum=2

[qsys_cores:children]
hq
branch

[hq:children]
lobby
rooms

[rooms:children]
rooms_east

[lobby]
lobby-[a:c].hq ansible_port=2201
lobby-b.hq ansible_port=2202 role='courtesy'

[rooms_east]
room-[01:09:4].hq
room-05.hq qsys_interface="LAN B"

[rooms:vars]
qsys_model=Core Nano
ansible_group_priority=2

[branch]
br-[1:2].branch:2222
lobby-a.hq

[switches]
sw-[1:2] ansible_network_os=ios
2001:db8::7
web

[2floor.east]
room-01.hq

[aa_ops]
room-09.hq
[aa_ops:vars]
qsipctl_timeout=20
ntp=198.18.0.2

[zz_ops]
room-09.hq
[zz_ops:vars]
qsipctl_timeout=25
ntp=198.18.0.3

[qsys_cores:vars]
qsys_model=Core 110f
ansible_user=qsipctl
sip_domain=pbx.example.net
"""

EXTRA_YML = """\
all:
  children:
    web:
      hosts:
        www1: {ansible_host: 198.18.0.80, http_port: 8080}
    branch:
      hosts:
        br-3.branch:
          ansible_host: "{{ inventory_hostname_short }}.example.net"
"""

CORES_MAIN = """\
softphone_defaults:
  profile: generic
  registrar: "{{ sip_domain }}"
  domain: "{{ sip_zone | default(sip_domain) }}"
softphones:
  - name: Phone 1
    username: "{{ inventory_hostname_short | regex_replace('[^0-9]', '') | default('100', true) }}"
    password: "{{ vault_sip_password }}"
    cid_name: "{{ inventory_hostname_short | upper }}"
"""

PATTERNS = [
    "all",
    "rooms[0]",
    "all[0:2]",
    "room*[1]",
    "qsys_cores:&hq",
    "qsys_cores:!rooms_east",
    "~lobby-[ab].*",
    "rooms[-1]",
    "qsys_cores[1:]",
    "2001:db8::7",
    "lobby,branch",
    "hq:branch",
    "web",
    "2floor.east",
    "*.branch",
]


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory, ansible: Ansible) -> dict[str, Any]:  # noqa: F811
    root = tmp_path_factory.mktemp("estate")
    inv = root / "inventory"
    (inv / "group_vars" / "qsys_cores").mkdir(parents=True)
    (inv / "host_vars" / "room-05.hq").mkdir(parents=True)
    (inv / "hosts").write_text(INI)
    (inv / "zz-extra.yml").write_text(EXTRA_YML)
    (inv / "README.md").write_text("# not an inventory (ignored extension)\n")
    (inv / ".hidden.yml").write_text("not: [an inventory\n")
    (inv / "group_vars" / "all.yml").write_text("site_name: acme\nntp: 198.18.0.1\n")
    (inv / "group_vars" / "qsys_cores" / "main.yml").write_text(CORES_MAIN)
    vault_file = inv / "group_vars" / "qsys_cores" / "vault.yml"
    vault_file.write_text("vault_sip_password: Sip-Pass-1\n")
    (inv / "group_vars" / "rooms").write_text("ansible_user: roomadmin\nqsipctl_backup_keep: 3\n")
    (inv / "group_vars" / "branch.json").write_text(
        json.dumps({"ansible_user": "branchadmin", "qsys_model": "Core 510i"})
    )
    (inv / "host_vars" / "room-05.hq" / "net.yml").write_text("ansible_host: 198.18.0.35\n")
    (inv / "host_vars" / "room-05.hq" / "more").write_text("qsipctl_timeout: 12\n")
    lab_pw = root / "lab.pw"
    lab_pw.write_text("lab-vault-password\n")
    default_pw = root / "default.pw"
    default_pw.write_text("default-vault-password\n")
    ansible.vault_encrypt_file(vault_file, lab_pw, "lab")
    assert vault_file.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;lab")
    inline = ansible.vault_encrypt_string("Ssh-Pass-2", default_pw)
    assert inline.startswith("!vault |") and "$ANSIBLE_VAULT;1.1;AES256" in inline
    (inv / "host_vars" / "lobby-a.hq.yml").write_text(
        "ansible_host: 198.18.0.21\n"
        f"ansible_password: {inline}\n"
        "note: !unsafe '{{ not templated }}'\n"
    )
    (root / "limit.txt").write_text("branch\nroom-05.hq\n")
    vault_args = ["--vault-id", f"lab@{lab_pw}", "--vault-password-file", str(default_pw)]
    return {"root": root, "inv": inv, "vault": vault_args, "lab_pw": lab_pw}


def qsipctl_json(estate: dict[str, Any], *args: str) -> dict[str, Any]:
    done = run_cli("inventory", str(estate["inv"]), *estate["vault"], "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def normalise(value: Any, key: str = "") -> Any:
    """Ansible's JSON for comparison: vault and unsafe markers unwrapped, secrets masked."""
    if isinstance(value, dict) and set(value) == {"__ansible_vault"}:
        return "********"
    if isinstance(value, dict) and set(value) == {"__ansible_unsafe"}:
        value = value["__ansible_unsafe"]
    if secret_like(key) and value not in (None, ""):
        return "********"
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def test_every_host_and_variable_agrees_with_ansible_inventory(estate, ansible):  # noqa: F811
    theirs = ansible.inventory_list(estate["inv"], *estate["vault"])["_meta"]["hostvars"]
    ours = {h["name"]: h for h in qsipctl_json(estate)["hosts"]}
    assert sorted(ours) == sorted(theirs)
    for name, hostvars in theirs.items():
        assert ours[name]["vars"] == normalise(hostvars), name
    assert ours["ntp-1"]["core"] is False and ours["www1"]["core"] is False
    assert ours["room-05.hq"]["core"] is True


def test_host_order_and_every_pattern_agree_with_list_hosts(estate, ansible):  # noqa: F811
    listing = qsipctl_json(estate)
    hosts = {h["name"] for h in listing["hosts"]}
    for group, members in listing["groups"].items():
        if group in hosts:
            continue  # as a pattern, 'web' names the host (checked below)
        assert members == ansible.list_hosts(estate["inv"], group), group
    patterns = [*PATTERNS, f"@{estate['root'] / 'limit.txt'}"]
    for pattern in patterns:
        theirs = ansible.list_hosts(estate["inv"], "all", "--limit", pattern)
        ours = [h["name"] for h in qsipctl_json(estate, "--limit", pattern)["hosts"]]
        assert ours == theirs, pattern


def test_templated_settings_agree_with_ansible(estate, ansible):  # noqa: F811
    expr = (
        "{'ansible_host': ansible_host | default(None), 'ansible_user': ansible_user,"
        " 'ansible_port': ansible_port | default(None), 'softphones': softphones,"
        " 'qsipctl_timeout': qsipctl_timeout | default(None)}"
    )
    theirs = ansible.debug(estate["inv"], "qsys_cores", expr, *estate["vault"])
    ours = {h["name"]: h["settings"] for h in qsipctl_json(estate)["hosts"]}
    assert len(theirs) == 9
    for name, values in theirs.items():
        for key, value in values.items():
            # ansible_host defaults to the inventory name in both (qsipctl: Core.address)
            mine = ours[name].get(key, name if key == "ansible_host" else None)
            assert mine == normalise(value, key), (name, key)
    assert ours["br-3.branch"]["ansible_host"] == "br-3.example.net"
    assert ours["room-05.hq"]["softphones"][0]["username"] == "05"


def test_vault_values_decrypt_and_push_the_right_secret(estate):
    from qsipctl.site.load import load_site
    from qsipctl.site.vault import load_keys

    keys = load_keys(vault_ids=[f"lab@{estate['lab_pw']}", f"{estate['root'] / 'default.pw'}"],
                     environ=False)  # fmt: skip
    site = load_site(estate["inv"], vault=keys, check_secrets=True)
    lobby = site.core("lobby-a.hq")
    assert lobby.softphones[0].password.reveal() == "Sip-Pass-1"
    assert lobby.connection.password is not None
    assert lobby.connection.password.reveal() == "Ssh-Pass-2"
    assert str(lobby.softphones[0].password) == "********"
    assert {c.name for c in site.cores} == {
        "lobby-a.hq", "lobby-b.hq", "lobby-c.hq", "room-01.hq", "room-05.hq", "room-09.hq",
        "br-1.branch", "br-2.branch", "br-3.branch",
    }  # fmt: skip
    assert site.core("room-09.hq").connection.timeout == 25.0  # zz_ops wins the tie
    assert site.core("lobby-b.hq").connection.port == 2202  # listed twice: the last wins


def test_host_view_names_the_source_of_each_setting(estate):
    done = run_cli("inventory", str(estate["inv"]), *estate["vault"], "--host", "room-05.hq")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "host_vars/room-05.hq/net.yml:1:" in lines["ansible_host"]
    assert "host_vars/room-05.hq/more:1:" in lines["qsipctl_timeout"]
    assert "group_vars/rooms:1:" in lines["ansible_user"]
    assert "hosts:" in lines["qsys_interface"]
    assert "Sip-Pass-1" not in done.stdout


def test_wrong_vault_password_is_one_clear_line(estate):
    wrong = estate["root"] / "wrong.pw"
    wrong.write_text("not-it\n")
    done = run_cli("validate", str(estate["inv"]), "--vault-id", f"lab@{wrong}")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "vault" in line]
    assert lines and "wrong vault password" in lines[0], done.stderr
    assert "group_vars/qsys_cores/vault.yml:1:1" in lines[0], done.stderr


def test_validate_warns_about_the_tie_and_the_names_ansible_warns_about(estate):
    done = run_cli("validate", str(estate["inv"]), *estate["vault"])
    assert done.returncode == 0, done.stderr
    text = done.stderr
    assert "zz_ops wins only because its name sorts last" in text, text
    assert "qsipctl_timeout" in text and "ntp" not in text.split("sorts last")[0][-200:]
    assert "'web' is both a host and a group" in text
    assert "'2floor.east' starts with a digit" in text
    assert "listed twice" in text and "ansible_port" in text


YAML_SITE = """\
paging:
  hosts:
    pager-[a:b]:
      ansible_port: 2300
  vars:
    qsys_model: Core 8 Flex
all:
  hosts:
    stray-1: {role: spare}
  vars:
    ansible_user: admin
  children:
    sites:
      vars: {ansible_group_priority: 4, ansible_user: site-admin, qsys_interface: LAN A}
      children:
        east:
          vars: {ansible_user: east-admin}
          children:
            east_rooms:
              hosts:
                "[2001:db8::21]:2201": {}
                room-e[1:3]:
            paging:
        west:
          vars: {qsys_interface: LAN B}
          hosts:
            room-w1:2202:
              qsys_model: Core Nano
            pager-a:
    ungrouped:
      hosts:
        stray-2:
    monitoring:
      vars: {ansible_group_priority: 9, ansible_user: monitor}
      hosts:
        pager-b:
"""


@pytest.fixture(scope="module")
def yaml_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("yaml-site")
    (root / "site.yml").write_text(YAML_SITE)
    (root / "group_vars").mkdir()
    (root / "group_vars" / "sites.yml").write_text("qsys_model: Core 110f\n")
    (root / "host_vars").mkdir()
    (root / "host_vars" / "room-e2.json").write_text('{"ansible_host": "198.18.0.42"}')
    return root / "site.yml"


def test_yaml_inventory_agrees_with_ansible_host_for_host(yaml_site, ansible):  # noqa: F811
    theirs = ansible.inventory_list(yaml_site)["_meta"]["hostvars"]
    done = run_cli("inventory", str(yaml_site), "--format", "json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    ours = {h["name"]: h for h in listing["hosts"]}
    assert sorted(ours) == sorted(theirs)
    for name, hostvars in theirs.items():
        assert ours[name]["vars"] == normalise(hostvars), name
    for group, members in listing["groups"].items():
        assert members == ansible.list_hosts(yaml_site, group), group
    for pattern in (
        "all[1:3]",
        "sites[-1]",
        "room-*[0]",
        "2001:db8::21",
        "paging:&west",
        "room-e2,pager-b",
    ):
        theirs_sel = ansible.list_hosts(yaml_site, "all", "--limit", pattern)
        done = run_cli("inventory", str(yaml_site), "--format", "json", "--limit", pattern)
        assert done.returncode == 0, (pattern, done.stderr)
        assert [h["name"] for h in json.loads(done.stdout)["hosts"]] == theirs_sel, pattern
