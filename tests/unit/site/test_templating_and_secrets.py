"""Templating as Ansible does it, and no wrong value ever pushed (issue 11, points 4, 9, 10)."""

from __future__ import annotations

import pytest

from tests.unit.site.conftest import ONE_CORE


def with_vars(text: str, extra: str) -> str:
    return text.replace("    qsys_model: Core 110f\n", f"    qsys_model: Core 110f\n{extra}")


def test_templates_resolve_against_the_hosts_variables(files):
    text = with_vars(
        ONE_CORE,
        "    vault_sip_password: '{{ pw_base }}-x'\n    pw_base: abc\n"
        "    ansible_host: '{{ inventory_hostname }}.example.net'\n"
        "    ansible_port: '{{ ssh_port | default(2222) }}'\n",
    ).replace("      ansible_host: 192.0.2.10\n", "")
    text = text.replace("password: file:secrets/pw.txt", "password: '{{ vault_sip_password }}'")
    site, diags = files.check(text)
    assert site is not None, [d.format() for d in diags]
    core = site.core("core1")
    assert core.address == "core1.example.net"
    assert core.connection.port == 2222  # one expression keeps its type
    assert core.softphones[0].password.reveal() == "abc-x"


def test_undefined_and_looping_templates_name_the_host_and_the_line(files):
    errors = files.errors(
        with_vars(ONE_CORE, "    ansible_user: '{{ a }}'\n    a: '{{ b }}'\n    b: '{{ a }}'\n")
    )
    assert len(errors) == 1, errors
    assert "site.yml:4:5: all.vars.ansible_user: host core1:" in errors[0]
    assert "variables refer to each other in a loop: a -> b -> a" in errors[0]
    errors = files.errors(with_vars(ONE_CORE, "    ansible_user: '{{ nope | upper }}'\n"))
    assert errors == [
        f"{files.root / 'site.yml'}:4:5: all.vars.ansible_user: host core1: undefined variable "
        "in '{{ nope | upper }}': 'nope' is undefined"
    ]


def test_sandbox_refuses_huge_results(files):
    errors = files.errors(with_vars(ONE_CORE, "    ansible_user: \"{{ 'x' * 10**9 }}\"\n"))
    assert len(errors) == 1 and "not allowed" in errors[0], errors


def test_sandbox_refuses_reaching_into_python(files):
    errors = files.errors(with_vars(ONE_CORE, "    ansible_user: \"{{ ''.__class__.__mro__ }}\"\n"))
    assert len(errors) == 1 and "host core1" in errors[0], errors


def test_other_variables_are_not_templated_and_unsafe_never(files):
    text = with_vars(
        ONE_CORE, "    motd: '{{ undefined_but_not_ours }}'\n    ansible_user: !unsafe '{{ x }}'\n"
    )
    site, diags = files.check(text)
    assert site is not None, [d.format() for d in diags]
    assert site.core("core1").connection.user == "{{ x }}"
    assert site.core("core1").variables["motd"] == "{{ undefined_but_not_ours }}"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("!unsafe '{{ vault_x }}'", "the password is an unexpanded template"),
        ("$ACME_3001_PW", "looks like a shell variable reference"),
        ("'${ACME_PW}'", "looks like a shell variable reference"),
        ("'%ACME_PW%'", "looks like a shell variable reference"),
        ("ENV:ACME_PW", "looks like an 'env:' reference"),
        ("'file :x.txt'", "looks like an 'file:' reference"),
        ("''", "empty password for a registering softphone"),
        ("env:QSIP_UNIT_EMPTY", "environment variable QSIP_UNIT_EMPTY is empty"),
    ],
)
def test_unresolved_or_empty_secrets_are_errors(files, monkeypatch, password: str, message: str):
    monkeypatch.setenv("QSIP_UNIT_EMPTY", "")
    errors = files.errors(ONE_CORE.replace("file:secrets/pw.txt", password))
    assert len(errors) == 1 and message in errors[0], errors
    assert "softphones[0].password" in errors[0]


def test_an_unset_secret_does_not_hide_core_wide_conflicts(files):
    text = ONE_CORE.replace("file:secrets/pw.txt", "env:QSIP_UNIT_UNSET") + (
        "        - name: Pager\n          profile: generic\n          registrar: 192.0.2.5:5060\n"
        "          username: '101'\n          password: env:QSIP_UNIT_UNSET\n"
        "          codecs: [G722]\n"
    )
    errors = files.errors(text)
    assert any("QSIP_UNIT_UNSET is not set" in e for e in errors), errors
    assert any("core-wide setting codecs differs on core1" in e for e in errors), errors


def test_two_cores_writing_one_file_on_one_machine_is_an_error(files):
    text = ONE_CORE + (
        "    core2:\n      ansible_host: 192.0.2.10\n      softphones:\n"
        "        - {name: P, profile: generic, registrar: 192.0.2.5, username: '102',"
        " password: file:secrets/pw.txt}\n"
    )
    assert files.errors(text) == []  # render and diagnose do not push
    errors = files.errors(text, push_checks=True)
    assert len(errors) == 1, errors
    assert "core1 and core2 both write 192.0.2.10:22:/var/lib/qsipctl/softphone.json" in (errors[0])
    site, diags = files.check(text.replace("      ansible_host: 192.0.2.10\n      softphones:\n"
                                           "        - {name: P", "      ansible_port: 2200\n"
                                           "      ansible_host: 192.0.2.10\n      softphones:\n"
                                           "        - {name: P"), push_checks=True)  # fmt: skip
    assert site is not None, [d.format() for d in diags]


def test_missing_ssh_key_is_a_validate_error_unless_secrets_are_skipped(files):
    text = with_vars(ONE_CORE, "    ansible_ssh_private_key_file: keys/id_ed25519\n")
    assert files.errors(text) == []  # render and diagnose need no key
    errors = files.errors(text, push_checks=True)
    assert len(errors) == 1 and "SSH private key file" in errors[0], errors
    assert "keys/id_ed25519: cannot be read (No such file or directory)" in errors[0]
    assert files.errors(text, check_secrets=False, push_checks=True) == []
