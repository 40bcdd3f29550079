"""validate, inventory, profiles and render through the installed console script."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.fixtures.common import REPO, run_cli

EXAMPLE = REPO / "inventory" / "example-site.yml"
BROKEN = REPO / "inventory" / "broken-site.yml"
MINIMAL = REPO / "inventory" / "minimal.yml"
EXAMPLE_SECRET = "example-2001-pw"


def ok(*args: str, **kw):
    res = run_cli(*args, **kw)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return res


# -- commands on the shipped examples -------------------------------------
def test_validate_example_is_clean():
    res = ok("validate", str(EXAMPLE))
    assert "valid: 12 cores, 15 softphones, 0 warnings" in res.stdout
    assert res.stderr == ""


def test_validate_json():
    data = json.loads(ok("validate", str(EXAMPLE), "--format", "json").stdout)
    assert data["valid"] is True and data["cores"] == 12 and data["diagnostics"] == []


def test_validate_broken_example_reports_everything_at_once():
    res = run_cli("validate", str(BROKEN), env={"QSIPCTL_EXAMPLE_UNSET_PASSWORD": ""})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    wanted = [
        "ansible_host: '192.0.2.300' is not a valid IPv4 address",
        "unknown profile 'freepbz' (did you mean 'freepbx'?)",
        "unknown key 'usename' (did you mean 'username'?)",
        "core-wide setting dtmf.mode differs on paging.example.net",
        "has 3 softphones but a Core Nano allows 2",
        "registrar: 70000 is out of range",
        "sip_port: SIP port 20000 falls in the core's fixed RTP range",
        "dtmf.mode: in-band DTMF is not available",
        "codec 'G.729' is not offered by Q-SYS softphones",
    ]
    for text in wanted:
        assert any(text in line for line in lines), text
    for line in lines:
        assert line.startswith("inventory/broken-site.yml:") or line.startswith(str(BROKEN))
    data = json.loads(run_cli("validate", str(BROKEN), "--format", "json").stdout)
    assert data["valid"] is False and data["errors"] >= len(wanted)


def test_inventory_table_json_and_limit():
    res = ok("inventory", str(EXAMPLE))
    assert "lobby-a.hq.example.net" in res.stdout and "12 cores, 15 softphones" in res.stdout
    assert "[2001:db8:10::50]:2222" in res.stdout
    data = json.loads(
        ok("inventory", str(EXAMPLE), "-l", "rooms:!room-04*", "--format", "json").stdout
    )
    assert [c["name"] for c in data["cores"]] == [
        f"room-0{i}.branch.example.net" for i in (1, 2, 3)
    ]
    assert data["cores"][0]["softphone_limit"] == 2


def test_inventory_reports_an_explicit_limit_even_zero(tmp_path):
    site = tmp_path / "s.yml"
    site.write_text(
        "all:\n  vars: {qsys_model: Core Nano}\n  hosts:\n"
        "    c0: {qsys_softphone_limit: 0}\n    c1: {qsys_softphone_limit: 1}\n    c2:\n"
    )
    data = json.loads(ok("inventory", str(site), "--format", "json").stdout)
    assert [c["softphone_limit"] for c in data["cores"]] == [0, 1, 2]


def test_inventory_without_secrets_available(tmp_path):
    site = tmp_path / "s.yml"
    site.write_text(MINIMAL.read_text().replace("file:secrets/lobby-2001.txt", "env:QSIP_E2E_NOPE"))
    ok("inventory", str(site))  # listing needs no secrets...
    res = run_cli("render", str(site))  # ...rendering does
    assert res.returncode == 2 and "QSIP_E2E_NOPE is not set" in res.stderr


def test_bad_limit_pattern_is_usage_error():
    res = run_cli("inventory", str(EXAMPLE), "--limit", "loby")
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "qsipctl: error: host pattern term 'loby' matches no host or group (did you mean 'lobby'?)"
    )


def test_profiles_list_and_show():
    res = ok("profiles")
    for name in ("freepbx", "cisco-cucm", "3cx", "hosted-trunk-tls", "teams-sbc", "generic"):
        assert name in res.stdout
    shown = ok("profiles", "hosted-trunk-tls").stdout
    assert "extends: generic-tls -> generic" in shown
    assert "hosted-trunk-tls.yml" in shown and "generic-tls.yml" in shown
    data = json.loads(ok("profiles", "freepbx", "--format", "json").stdout)
    rows = {r["key"]: r for r in data["settings"]}
    assert rows["dtmf.mode"]["scope"] == "core-wide"
    assert rows["session_timer.expires"]["scope"] == "expectation"
    assert "freepbx.yml" in rows["session_timer.expires"]["source"]
    assert "generic.yml" in rows["sip_port"]["source"]


def test_profiles_unknown_name():
    res = run_cli("profiles", "freepxb")
    assert res.returncode == 2
    assert "unknown profile 'freepxb' (did you mean 'freepbx'?)" in res.stderr
    assert len(res.stderr.splitlines()) == 1


def test_profiles_dir_option(tmp_path):
    (tmp_path / "mine.yml").write_text(
        "# Source: our PBX runbook\nextends: freepbx\nregistrar: 192.0.2.7\n"
    )
    res = ok("profiles", "mine", "--profiles-dir", str(tmp_path))
    assert "192.0.2.7" in res.stdout and "mine.yml" in res.stdout


def test_render_masked_by_default_and_deterministic():
    a = ok("render", str(EXAMPLE), "--limit", "hq")
    b = ok("render", str(EXAMPLE), "--limit", "hq")
    assert a.stdout == b.stdout
    assert EXAMPLE_SECRET not in a.stdout and "********" in a.stdout
    assert '"schema": "qsipctl.softphone-config"' in a.stdout


def test_render_show_secrets_and_json():
    res = ok(
        "render", str(EXAMPLE), "-l", "lobby-a.hq.example.net", "--show-secrets", "--format", "json"
    )
    doc = json.loads(res.stdout)["lobby-a.hq.example.net"]
    assert doc["softphones"][0]["password"] == "example-2001-pw"
    assert doc["softphones"][0]["proxy"] == "192.0.2.5:5060"
    assert doc["softphones"][0]["backup_proxy"] == "192.0.2.6:5060"
    assert doc["version"] == 1


def test_render_sheet():
    res = ok("render", str(EXAMPLE), "-l", "emergency.hq.example.net", "--sheet")
    out = res.stdout
    assert "Core Manager > Telephony > Softphones" in out
    assert "SRTP            On" in out and "STUN            On (203.0.113.3:3478)" in out
    assert "Transport             TLS (TLS 1.2)" in out
    assert "Session timer    1800 s, Min-SE 90 s" in out
    assert "Password              ********" in out
    sheet = json.loads(
        ok("render", str(EXAMPLE), "-l", "paging", "--sheet", "--format", "json").stdout
    )
    assert sheet["sheets"][0]["core_wide"]["Core Interface"] == "LAN B"


# -- bad input: one line each, exit 2, no traceback -----------------------
PHONE = """\
      softphones:
        - name: Phone
          profile: {profile}
          registrar: {registrar}
          username: "100"
          password: {password}
"""


def site_text(
    profile="generic", registrar="192.0.2.5", password="file:pw.txt", host="192.0.2.10", extra=""
):
    return (
        "all:\n  vars:\n    qsys_model: Core 110f\n  hosts:\n    core1:\n"
        f"      ansible_host: {host}\n{extra}"
        + PHONE.format(profile=profile, registrar=registrar, password=password)
    )


TWO_GROUPS = """\
all:
  vars: {qsys_model: Core 110f}
  children:
    lobby:
      vars: {ansible_port: 2201}
      hosts: {core1: }
    paging:
      vars: {ansible_port: 2202}
      hosts: {core1: }
"""

CONFLICT = (
    site_text()
    + """\
        - name: Pager
          profile: generic
          registrar: 192.0.2.5
          username: "101"
          password: file:pw.txt
          codecs: [G722]
"""
)

TOO_MANY = (
    site_text().replace("Core 110f", "Core 110c")
    + """\
        - name: Second
          profile: generic
          registrar: 192.0.2.5
          username: "101"
          password: file:pw.txt
"""
)

CASES = {
    "malformed-yaml": ("all:\n  hosts: [core1\n", r"invalid YAML"),
    "tabs": ("all:\n\thosts:\n", r":2:1: tab character in indentation"),
    "duplicate-key": (
        "all:\n  hosts:\n    c1:\n    c1:\n",
        r":4:5: all.hosts.c1: duplicate key 'c1' \(first defined at line 3\)",
    ),
    "unknown-key": (
        site_text(extra="      qsys_modl: Nano\n"),
        r"unknown variable 'qsys_modl' \(did you mean 'qsys_model'\?\)",
    ),
    "unknown-key-in-entry": (
        site_text().replace("username:", "usrname:"),
        r"unknown key 'usrname' \(did you mean 'username'\?\)",
    ),
    "wrong-type": (
        site_text(extra="      ansible_port: twenty-two\n"),
        r"ansible_port: expected a port 1-65535, got a string",
    ),
    "unknown-profile": (
        site_text(profile="genric"),
        r"unknown profile 'genric' \(did you mean 'generic'\?\)",
    ),
    "bad-ip": (
        site_text(host="10.0.0.999"),
        r"ansible_host: '10.0.0.999' is not a valid IPv4 address",
    ),
    "bad-ipv6": (
        site_text(registrar="'[2001:db8::zz]:5060'"),
        r"registrar: '2001:db8::zz' is not a valid IPv6 address",
    ),
    "bad-port": (
        site_text(registrar="192.0.2.5:0"),
        r"registrar: 0 is out of range: expected a port 1-65535",
    ),
    "bad-host-range": (
        "all:\n  hosts:\n    core-[5:1]:\n",
        r"bad range \[5:1\]: start is greater than end",
    ),
    "too-many-hosts": (
        "all:\n  vars: {qsys_model: Core Nano}\n  hosts:\n"
        "    a-[1:10000]:\n    b-[1:10000]:\n    c-[1:2]:\n",
        r":6:5: all\.hosts\.c-\[1:2\]: the inventory would have 20002 hosts with this entry; "
        r"qsipctl loads at most 20000 per inventory",
    ),
    "sip-port-in-rtp-range": (
        site_text(extra="      softphone_defaults: {sip_port: 16384}\n"),
        r"SIP port 16384 falls in the core's fixed RTP range 16384-32768",
    ),
    "empty-inventory": ("# nothing here\n", r"the inventory is empty"),
    "undefined-template-password": (
        site_text(password='"{{ vault_x }}"'),
        r"site.yml:\d+:\d+: all.hosts.core1.softphones\[0\].password: host core1: undefined "
        r"variable in '\{\{ vault_x \}\}': 'vault_x' is undefined",
    ),
    "shell-variable-password": (
        site_text(password="$ACME_3001_PW"),
        r"password: the password looks like a shell variable reference.*write env:ACME_3001_PW",
    ),
    "uppercase-env-password": (
        site_text(password="ENV:ACME_PW"),
        r"password: the password looks like an 'env:' reference but is not written 'env:NAME'",
    ),
    "empty-password": (
        site_text(password='""'),
        r"password: empty password for a registering softphone",
    ),
    "missing-env-secret": (
        site_text(password="env:QSIP_E2E_UNSET"),
        r"password: environment variable QSIP_E2E_UNSET is not set",
    ),
    "missing-secret-file": (
        site_text(password="file:nope.txt"),
        r"password: cannot read secret file .*nope.txt: No such file",
    ),
    "core-wide-conflict": (
        CONFLICT,
        r"core-wide setting codecs differs on core1: softphone 'Phone' gets \[PCMU, PCMA, G722\]"
        r" from profile generic \(.*generic.yml:\d+:\d+\), softphone 'Pager' gets \[G722\]"
        r" from softphone 'Pager' of core1 \(.*site.yml:18:11\)",
    ),
    "too-many-softphones": (TOO_MANY, r"core1 has 2 softphones but a Core 110c allows 1"),
    "inband-dtmf": (
        site_text(extra="      softphone_defaults: {dtmf: {mode: inband}}\n"),
        r"in-band DTMF is not available",
    ),
}


def test_equal_depth_tie_is_a_warning_naming_both_groups(tmp_path: Path):
    site = tmp_path / "site.yml"
    site.write_text(TWO_GROUPS)
    res = run_cli("validate", str(site))
    assert res.returncode == 0, res.stderr
    [line] = [x for x in res.stderr.splitlines() if "sorts last" in x]
    assert "host core1 is in groups lobby and paging" in line and "ansible_port" in line
    assert "ansible_group_priority" in line


def test_validate_finds_what_a_push_would_meet(tmp_path: Path):
    """An unreadable SSH key and two cores writing one file: validate errors, not push surprises."""
    (tmp_path / "pw.txt").write_text("pw\n")
    site = tmp_path / "site.yml"
    site.write_text(site_text(extra="      ansible_ssh_private_key_file: keys/nokey\n"))
    res = run_cli("validate", str(site))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    [line] = res.stderr.splitlines()[:1]
    assert re.search(
        r"site.yml:\d+:\d+: all.hosts.core1.ansible_ssh_private_key_file: SSH private key file "
        r".*keys/nokey: cannot be read \(No such file or directory\)",
        line,
    ), line
    assert run_cli("render", str(site)).returncode == 0  # rendering needs no key


def test_empty_environment_password_is_refused_not_pushed_empty(tmp_path: Path):
    site = tmp_path / "site.yml"
    site.write_text(site_text(password="env:QSIP_E2E_EMPTY"))
    for command in ("validate", "render"):
        res = run_cli(command, str(site), env={"QSIP_E2E_EMPTY": ""})
        assert res.returncode == 2, res.stdout
        assert "environment variable QSIP_E2E_EMPTY is empty" in res.stderr
        assert "********" not in res.stdout


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["validate", "render"])
def test_bad_input_one_line_exit_2(tmp_path: Path, case: str, command: str):
    text, pattern = CASES[case]
    (tmp_path / "pw.txt").write_text("pw\n")
    site = tmp_path / "site.yml"
    site.write_text(text)
    res = run_cli(command, str(site), cwd=tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if "warning:" not in line]
    assert len(errors) == 1, res.stderr
    assert re.search(pattern, errors[0]), errors[0]
    assert str(site) in errors[0]


def test_extends_cycle(tmp_path: Path):
    (tmp_path / "pw.txt").write_text("pw\n")
    prof = tmp_path / "profiles"
    prof.mkdir()
    (prof / "a.yml").write_text("extends: b\n")
    (prof / "b.yml").write_text("extends: a\n")
    site = tmp_path / "site.yml"
    site.write_text(site_text(profile="a"))
    res = run_cli("validate", str(site))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    [line] = res.stderr.splitlines()
    assert re.search(r"b\.yml:1:1: extends: extends cycle: a -> b -> a", line)


def test_literal_password_is_a_warning_and_never_printed(tmp_path: Path):
    site = tmp_path / "site.yml"
    site.write_text(site_text(password="hunter2-literal"))
    res = run_cli("validate", str(site))
    assert res.returncode == 0
    assert "literal password" in res.stderr and "hunter2" not in res.stderr + res.stdout
    assert "hunter2" not in ok("render", str(site)).stdout


def test_ipv6_registrar_with_an_unbracketed_port_warns(tmp_path: Path):
    (tmp_path / "pw.txt").write_text("pw\n")
    site = tmp_path / "site.yml"
    site.write_text(site_text(registrar='"2001:db8::1:5060"'))
    res = run_cli("validate", str(site), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    [line] = res.stderr.splitlines()
    assert re.search(
        re.escape(str(site)) + r":\d+:\d+: all\.hosts\.core1\.softphones\[0\]\.registrar: "
        r"warning: .*write '\[2001:db8::1\]:5060'",
        line,
    ), line
    assert "1 warning" in res.stdout
    bracketed = site_text(registrar="'[2001:db8::1]:5060'")
    site.write_text(bracketed)
    assert ok("validate", str(site), cwd=tmp_path).stderr == ""


def _tls_site(tmp_path: Path, ca_file: str, transport: str = "tls") -> Path:
    (tmp_path / "pw.txt").write_text("pw\n")
    site = tmp_path / "site.yml"
    extra = f"          transport: {transport}\n          tls: {{ca_file: {ca_file}}}\n"
    site.write_text(site_text(registrar="192.0.2.5:5061") + extra)
    return site


def test_missing_ca_file_fails_validate_and_render(tmp_path: Path):
    site = _tls_site(tmp_path, "certs/missing.pem")
    for command in ("validate", "render"):
        res = run_cli(command, str(site), cwd="/")
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        [line] = res.stderr.splitlines()
        assert f"{site}:14:17: all.hosts.core1." in line
        assert f"softphones[0].tls.ca_file: CA file {tmp_path}/certs/missing.pem does not" in line


def test_missing_ca_file_on_udp_only_warns(tmp_path: Path):
    site = _tls_site(tmp_path, "certs/missing.pem", transport="udp")
    res = ok("validate", str(site), cwd="/")
    assert "(not used while transport is udp)" in res.stderr and "1 warning" in res.stdout


def test_relative_ca_file_resolves_beside_the_site_and_renders_as_written(tmp_path: Path):
    import subprocess

    (tmp_path / "certs").mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(tmp_path / "certs" / "ca.key"),
         "-out", str(tmp_path / "certs" / "ca.pem"), "-subj", "/CN=e2e CA", "-days", "2"],
        check=True, capture_output=True,
    )  # fmt: skip
    site = _tls_site(tmp_path, "certs/ca.pem")
    ok("validate", str(site), cwd="/")
    here = ok("render", str(site), "--format", "json", cwd=tmp_path).stdout
    there = ok("render", str(site), "--format", "json", cwd="/").stdout
    assert here == there  # deterministic: no path resolved on this machine in the document
    [doc] = json.loads(here).values()
    assert doc["softphones"][0]["tls"]["ca_file"] == "certs/ca.pem"


MIXED_INI = """\
[web]
www1 ansible_host=192.0.2.80

[switches]
sw1 ansible_network_os=ios

[qsys_cores]
core1 ansible_host=192.0.2.10
core2 ansible_host=10.0.0.300

[qsys_cores:vars]
qsys_model=Core Nano
"""


def test_mixed_ini_inventory_lists_other_hosts_and_limit_selects_first(tmp_path: Path):
    (tmp_path / "hosts").write_text(MIXED_INI)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "qsys_cores.yml").write_text(
        "softphones:\n  - {name: P, profile: generic, registrar: 192.0.2.5, username: '100',"
        " password: file:pw.txt}\n"
    )
    (tmp_path / "pw.txt").write_text("pw\n")
    site = str(tmp_path / "hosts")
    bad = run_cli("validate", site)
    assert bad.returncode == 2 and "10.0.0.300" in bad.stderr
    res = run_cli("inventory", site, "--limit", "qsys_cores:!core2:web")
    assert res.returncode == 0, res.stderr
    rows = [line.split()[:2] for line in res.stdout.splitlines()[2:-1]]
    assert rows == [["core1", "Core"], ["www1", "not"]], res.stdout
    assert "1 core, 1 softphone, 1 other host (not a core: skipped)" in res.stdout
    rendered = run_cli("render", site, "--limit", "core1")
    assert rendered.returncode == 0, rendered.stderr
    none = run_cli("render", site, "--limit", "web")
    assert none.returncode == 2
    assert "--limit 'web' selects no Q-SYS cores, only other hosts: www1" in none.stderr
