"""Ansible inventory shape and the documented precedence."""

from tests.unit.site.conftest import ONE_CORE


def phone(username="100", ind=18):
    pad = " " * ind
    lines = [
        "softphones:",
        "  - name: Phone",
        "    profile: generic",
        "    registrar: 192.0.2.5",
        f'    username: "{username}"',
        "    password: file:secrets/pw.txt",
    ]
    return "".join(f"\n{pad}{line}" for line in lines)


def test_one_core_loads(files):
    site, diags = files.check(ONE_CORE)
    assert diags == [] and site is not None
    core = site.core("core1")
    assert core.address == "192.0.2.10"
    assert core.connection.port == 22
    assert core.softphones[0].domain == "192.0.2.5"


def test_precedence_all_parent_child_host_entry(files):
    site, diags = files.check(
        """\
        all:
          vars:
            qsys_model: Core 510i
            softphone_defaults: {profile: generic, registrar: 192.0.2.1, registration_timeout: 100,
                                 domain: all.example, cid_name: from-all}
          children:
            parent:
              vars:
                softphone_defaults: {registrar: 192.0.2.2, registration_timeout: 200,
                                     domain: parent.example}
              children:
                child:
                  vars:
                    softphone_defaults: {registration_timeout: 300, domain: child.example}
                  hosts:
                    core1:
                      softphone_defaults: {domain: host.example}
                      softphones:
                        - {username: "1", password: file:secrets/pw.txt, cid_name: entry}
        """
    )
    assert [d.format() for d in diags] == []
    p = site.core("core1").softphones[0]
    assert p.proxy.host == "192.0.2.2"  # parent beats all
    assert p.registration_timeout == 300  # child beats parent
    assert p.domain == "host.example"  # host beats child
    assert p.cid_name == "entry"  # entry beats everything


def test_host_vars_beat_group_vars_and_child_beats_parent(files):
    site, _ = files.check(
        f"""\
        all:
          vars: {{qsys_model: Core Nano, ansible_port: 2200}}
          children:
            parent:
              vars: {{ansible_port: 2201, ansible_user: parent}}
              children:
                child:
                  vars: {{ansible_port: 2202}}
                  hosts:
                    core1:{phone(ind=22)}
                    core2:
                      ansible_port: 2203{phone("101", ind=22)}
        """
    )
    assert site.core("core1").connection.port == 2202
    assert site.core("core1").connection.user == "parent"
    assert site.core("core2").connection.port == 2203
    assert site.core("core1").groups == ("parent", "child")


def test_equal_depth_tie_is_decided_by_name_with_a_warning_naming_both(files):
    """As Ansible: the alphabetically last group wins; qsipctl warns since it decides a setting."""
    site, diags = files.check(
        f"""\
        all:
          vars: {{qsys_model: Core 110f}}
          children:
            lobby:
              vars: {{ansible_user: lobbyadmin}}
              hosts:
                core1:{phone()}
            paging:
              vars: {{ansible_user: pagingadmin}}
              hosts:
                core1:
        """
    )
    assert site is not None and site.core("core1").connection.user == "pagingadmin"
    warnings = [d.format() for d in diags if d.severity == "warning"]
    assert len(warnings) == 1, warnings
    assert "lobby and paging" in warnings[0] and "ansible_group_priority" in warnings[0]
    assert "site.yml:5:" in warnings[0]  # the losing group's line is named too


def test_tie_on_a_variable_qsipctl_never_reads_is_silent(files):
    site, diags = files.check(
        f"""\
        all:
          vars: {{qsys_model: Core 110f}}
          children:
            lobby:
              vars: {{ntp_server: ntp1}}
              hosts:
                core1:{phone()}
            paging:
              vars: {{ntp_server: ntp2}}
              hosts:
                core1:
        """
    )
    assert site is not None and diags == [], [d.format() for d in diags]
    assert site.core("core1").variables["ntp_server"] == "ntp2"


def test_group_priority_breaks_the_tie(files):
    site, diags = files.check(
        f"""\
        all:
          vars: {{qsys_model: Core 110f}}
          children:
            lobby:
              vars: {{ansible_user: lobbyadmin, ansible_group_priority: 5}}
              hosts:
                core1:{phone()}
            paging:
              vars: {{ansible_user: pagingadmin}}
              hosts:
                core1:
        """
    )
    assert site is not None, [d.format() for d in diags]
    assert site.core("core1").connection.user == "lobbyadmin"
    assert site.groups["paging"] == ("core1",)


def test_host_listed_twice_with_different_values(files):
    """As Ansible the last listing wins; on a qsipctl setting that is worth a warning."""
    site, diags = files.check(
        f"""\
        all:
          vars: {{qsys_model: Core 110f}}
          children:
            a:
              hosts:
                core1:
                  ansible_host: 192.0.2.1{phone()}
            b:
              hosts:
                core1:
                  ansible_host: 192.0.2.2
        """
    )
    assert site is not None and site.core("core1").address == "192.0.2.2"
    warnings = [d.format() for d in diags if d.severity == "warning"]
    assert len(warnings) == 1 and "listed twice" in warnings[0] and "192.0.2.1" in warnings[0]


def test_host_ranges_expand(files):
    site, diags = files.check(
        """\
        all:
          vars:
            qsys_model: Core Nano
          hosts:
            core-[01:12].site-a:
        """
    )
    assert site is not None, [d.format() for d in diags]
    assert [c.name for c in site.cores][:2] == ["core-01.site-a", "core-02.site-a"]
    assert len(site.cores) == 12


def test_bad_range_and_bad_group_name(files):
    errors = files.errors(
        """\
        all:
          children:
            "bad group":
              hosts:
                c1:
          hosts:
            core-[9:1]:
        """
    )
    assert any("start is greater than end" in e for e in errors)
    assert any("invalid group name" in e for e in errors)


def test_group_cycle(files):
    errors = files.errors(
        """\
        all:
          children:
            a:
              children:
                b:
                  children:
                    a:
                  hosts:
                    c1:
        """
    )
    assert errors and "loops" in errors[0]


def test_empty_inventory(files):
    assert "empty" in files.errors("")[0]
    assert "empty" in files.errors("all:\n")[0] or "no hosts" in files.errors("all:\n")[0]


def test_misspelt_keys_get_hints(files):
    errors = files.errors(
        """\
        all:
          childs:
            a:
          hosts:
            c1:
              qsys_modle: Core 110f
              sofphones: []
        """
    )
    text = "\n".join(errors)
    assert "did you mean 'children'" in text
    assert "did you mean 'qsys_model'" in text
    assert "did you mean 'softphones'" in text


def test_foreign_ansible_vars_are_kept(files):
    site, diags = files.check(
        ONE_CORE.replace("    qsys_model:", "    ntp_server: 1.2.3.4\n    qsys_model:")
    )
    assert site is not None and not diags
    assert site.core("core1").variables["ntp_server"] == "1.2.3.4"


def test_wrong_types(files):
    errors = files.errors(
        """\
        all:
          vars: [1, 2]
          hosts:
            c1: 5
        """
    )
    assert any("vars must be a mapping" in e for e in errors)
    assert any("host variables must be a mapping" in e for e in errors)


def test_ansible_aliases_are_understood_not_flagged(files):
    text = ONE_CORE.replace(
        "      ansible_host: 192.0.2.10",
        "      ansible_ssh_host: 192.0.2.11\n      ansible_private_key_file: keys/id\n"
        "      ansible_ssh_pass: file:secrets/pw.txt\n      ansible_become: false",
    )
    (files.root / "keys").mkdir()
    (files.root / "keys" / "id").write_text("not really a key\n")
    site, diags = files.check(text)
    assert site is not None and not diags, [d.format() for d in diags]
    conn = site.core("core1").connection
    assert conn.host == "192.0.2.11"
    assert conn.key_file == str(files.root / "keys" / "id")
    assert conn.password.reveal() == "s3cret-from-file"


def test_structure_mistakes_explained(files):
    errors = files.errors(
        """\
        all:
          qsys_model: Core 110f
          hosts:
            c1:
              vars:
                ansible_port: 22
        """
    )
    text = "\n".join(errors)
    assert "'qsys_model' is a variable: in a group it goes under 'vars:'" in text
    assert "a host has no 'vars': host variables go directly under the host name" in text


def test_host_key_with_port_is_ansible_host_port(files):
    """Ansible's YAML inventory reads ``name:port`` host keys as host plus ansible_port."""
    site, diags = files.check(
        """\
        all:
          vars:
            qsys_model: Core Nano
          hosts:
            core1.example.net:2200:
            core-[1:2]:2201:
            "[2001:db8::7]:2202":
            2001:db8::8:
            core9:2203:
              ansible_port: 2300
        """
    )
    assert site is not None, [d.format() for d in diags]
    ports = {c.name: c.connection.port for c in site.cores}
    assert ports == {
        "core1.example.net": 2200,
        "core-1": 2201,
        "core-2": 2201,
        "2001:db8::7": 2202,
        "2001:db8::8": 22,
        "core9": 2300,
    }


def test_host_key_with_bad_port(files):
    errors = files.errors(
        """\
        all:
          vars:
            qsys_model: Core Nano
          hosts:
            core1:70000:
        """
    )
    assert len(errors) == 1 and "70000" in errors[0] and "1-65535" in errors[0], errors


def test_explicit_ungrouped_group_keeps_its_hosts(files):
    """``ansible-inventory --list -y`` writes ``ungrouped:`` with hosts; they stay in it."""
    from qsipctl.site.patterns import select

    site, diags = files.check(
        """\
        all:
          vars:
            qsys_model: Core Nano
          hosts:
            a1:
          children:
            ungrouped:
              hosts:
                lone:
            g:
              hosts:
                b1:
        """
    )
    assert site is not None, [d.format() for d in diags]
    assert [c.name for c in select(site, "ungrouped")] == ["a1", "lone"]


def test_inventory_vars_beat_the_profile_and_its_parents(files):
    """Precedence level 2 < 3: even ``all: vars`` overrides what the profile says."""
    files.profile("mine", "extends: generic\ncodecs: [PCMU, PCMA]\nregistration_timeout: 120\n")
    site, diags = files.check(
        """\
        all:
          vars:
            qsys_model: Core Nano
            softphone_defaults: {codecs: [G722]}
          hosts:
            core1:
              softphones:
                - {profile: mine, registrar: 192.0.2.1, username: "1",
                   password: file:secrets/pw.txt}
        """
    )
    assert site is not None, [d.format() for d in diags]
    core = site.core("core1")
    assert core.settings.codecs == ("G722",)  # all beats the profile
    assert core.softphones[0].registration_timeout == 120  # the profile beats the default


def test_conflict_messages_never_show_secret_like_values(files):
    """An Ansible inventory holds become passwords, API keys, tokens: never echo them.

    Ties and repeated hosts on someone else's variables are not even reported
    (Ansible resolves them and qsipctl never reads them); on qsipctl's own
    password the warning masks both values.
    """
    site, diags = files.check(
        """\
        all:
          vars: {qsys_model: Core Nano}
          children:
            g1:
              vars: {vault_api_key: KEY-ONE, my_token: TOK-ONE, ansible_password: PWD-ONE}
              hosts:
                c1: {ansible_become_pass: BECOME-ONE, sip_pwd: SIP-ONE}
            g2:
              vars: {vault_api_key: KEY-TWO, my_token: TOK-TWO, ansible_password: PWD-TWO}
              hosts:
                c1: {ansible_become_pass: BECOME-TWO, sip_pwd: SIP-TWO}
        """
    )
    text = "\n".join(d.format() for d in diags)
    for word in ("KEY", "TOK", "SIP", "BECOME", "PWD"):
        assert f"{word}-ONE" not in text and f"{word}-TWO" not in text, text
    ties = [d.format() for d in diags if "sorts last" in d.message]
    assert len(ties) == 1 and "ansible_password" in ties[0] and "(a secret)" in ties[0], text
    assert site is not None and site.core("c1").connection.password.reveal() == "PWD-TWO"


def test_structure_errors_do_not_hide_the_other_hosts_errors(files):
    """validate reports every error at once: a malformed host must not mask a bad address."""
    errors = files.errors(
        """\
        all:
          vars: {qsys_model: Core Nano}
          hosts:
            good-shape: {ansible_host: 10.0.0.300}
            bad-shape: [1]
        """
    )
    assert len(errors) == 2, errors
    assert "10.0.0.300" in errors[0] and "must be a mapping" in errors[1], errors


def test_overall_host_cap_counts_every_range(files):
    from qsipctl.site.ranges import MAX_HOSTS, MAX_INVENTORY_HOSTS

    ranges = MAX_INVENTORY_HOSTS // MAX_HOSTS
    hosts = "".join(f"    r{i}-[1:{MAX_HOSTS}]:\n" for i in range(ranges))
    text = f"all:\n  vars: {{qsys_model: Core Nano}}\n  hosts:\n{hosts}    extra-[1:2]:\n"
    errors = files.errors(text)
    assert len(errors) == 1, errors
    assert (
        f"all.hosts.extra-[1:2]: the inventory would have {MAX_INVENTORY_HOSTS + 2} hosts"
        in (errors[0])
    )
    assert f"at most {MAX_INVENTORY_HOSTS} per inventory" in errors[0]
    assert f":{ranges + 4}:5:" in errors[0]


def test_overall_host_cap_boundary_and_repeats(files, monkeypatch):
    from qsipctl.site import inventory

    monkeypatch.setattr(inventory, "MAX_INVENTORY_HOSTS", 5)
    at_cap = "all:\n  vars: {qsys_model: Core Nano}\n  children:\n"
    at_cap += '    g1: {hosts: {"c-[1:3]": }}\n    g2: {hosts: {"c-[2:5]": }}\n'
    assert files.errors(at_cap) == []  # c-2, c-3 are listed twice but are 5 hosts
    [error] = files.errors(at_cap + "    g3: {hosts: {d-1: }}\n")
    assert "all.children.g3.hosts.d-1: the inventory would have 6 hosts" in error
