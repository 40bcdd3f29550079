"""The Core Manager rules: core-wide vs per-softphone, limits, DTMF, secrets."""

import pytest

from tests.unit.site.conftest import ONE_CORE


def core_with(phones: str, model: str = "Core 110f") -> str:
    return f"""\
all:
  vars:
    qsys_model: {model}
  hosts:
    core1:
      ansible_host: 192.0.2.10
      softphone_defaults:
        registrar: 192.0.2.5
        password: file:secrets/pw.txt
      softphones:
{phones}"""


def entry(name, profile="generic", extra=""):
    return (
        f"        - name: {name}\n          profile: {profile}\n"
        f'          username: "{name}"\n{extra}'
    )


def test_core_wide_conflict_names_both_sources(files):
    files.profile("pbx-a", "extends: generic\ndtmf:\n  mode: sip-info\n")
    errors = files.errors(core_with(entry("A", "pbx-a") + entry("B", "generic")))
    assert len(errors) == 1
    msg = errors[0]
    assert "core-wide setting dtmf.mode differs on core1" in msg
    assert "profile pbx-a" in msg and "pbx-a.yml:3:3" in msg
    assert "profile generic" in msg and "generic.yml" in msg
    assert msg.split(": ")[1] == "all.hosts.core1.softphones[1]"


@pytest.mark.parametrize(
    "leaf,yaml",
    [
        ("srtp", "          srtp: true\n"),
        ("codecs", "          codecs: [G722]\n"),
        ("sip_port", "          sip_port: 5070\n"),
        ("stun.enabled", "          stun: {server: 192.0.2.9}\n"),
        ("dtmf.payload_type", "          dtmf: {payload_type: 96}\n"),
    ],
)
def test_every_core_wide_setting_must_agree(files, leaf, yaml):
    errors = files.errors(core_with(entry("A") + entry("B", extra=yaml)))
    assert any(f"core-wide setting {leaf} differs" in e for e in errors), errors


def test_per_softphone_settings_may_differ(files):
    site, diags = files.check(
        core_with(
            entry("A", extra="          transport: tcp\n          registration_timeout: 600\n")
            + entry("B", "generic-tls", extra="          srtp: false\n")
        )
    )
    assert site is not None, [d.format() for d in diags]
    a, b = site.core("core1").softphones
    assert (a.transport, a.registration_timeout, b.transport) == ("tcp", 600, "tls")


def test_softphone_limit_per_model(files):
    errors = files.errors(core_with(entry("A") + entry("B") + entry("C"), model="Core Nano"))
    assert any("has 3 softphones but a Core Nano allows 2" in e for e in errors)


def test_model_names_normalised_and_unknown_rejected(files):
    site, _ = files.check(core_with(entry("A"), model="core-110F"))
    assert site.core("core1").model == "Core 110f"
    errors = files.errors(core_with(entry("A"), model="Core 110x"))
    assert "unknown core model 'Core 110x' (did you mean 'Core 110f'?)" in errors[0]


def test_unknown_model_allowed_with_explicit_limit(files):
    text = core_with(entry("A"), model="Core 24f").replace(
        "    qsys_model: Core 24f", "    qsys_model: Core 24f\n    qsys_softphone_limit: 16"
    )
    site, diags = files.check(text)
    assert site is not None, [d.format() for d in diags]


def test_inband_dtmf_rejected_with_reason(files):
    errors = files.errors(core_with(entry("A", extra="          dtmf: {mode: inband}\n")))
    assert "out of band only" in errors[0] and "dtmf.mode" in errors[0]


def test_unknown_profile_did_you_mean(files):
    errors = files.errors(core_with(entry("A", "fre-pbx")))
    assert "unknown profile 'fre-pbx' (did you mean 'freepbx'?)" in errors[0]


def test_missing_env_secret_and_file(files, monkeypatch):
    monkeypatch.delenv("QSIP_TEST_NOPE", raising=False)
    errors = files.errors(
        core_with(
            entry("A", extra="          password: env:QSIP_TEST_NOPE\n")
            + entry("B", extra="          password: file:secrets/none.txt\n")
        )
    )
    assert any("environment variable QSIP_TEST_NOPE is not set" in e for e in errors)
    assert any("cannot read secret file" in e and "none.txt" in e for e in errors)
    site, _ = files.check(
        core_with(entry("A", extra="          password: env:QSIP_TEST_NOPE\n")),
        check_secrets=False,
    )
    assert site is not None


def test_literal_password_warns_but_never_shows(files):
    warnings = files.warnings(core_with(entry("A", extra="          password: hunter2\n")))
    assert warnings and "literal password" in warnings[0]
    assert all("hunter2" not in w for w in warnings)


def test_stun_needs_server_and_server_enables_stun(files):
    errors = files.errors(core_with(entry("A", extra="          stun: {enabled: true}\n")))
    assert "no stun.server" in errors[0]
    site, _ = files.check(core_with(entry("A", extra="          stun: {server: 192.0.2.9}\n")))
    s = site.core("core1").settings
    assert s.stun_enabled and str(s.stun_server) == "192.0.2.9:3478"


def test_expectations_kept_apart(files):
    site, _ = files.check(core_with(entry("A", "freepbx")))
    p = site.core("core1").softphones[0]
    assert p.expectations.session_timer == 1800
    assert p.expectations.keepalive == "options"
    assert p.expectations.registrar.host == "192.0.2.5"


def test_outbound_proxy_becomes_proxy_and_domain_defaults(files):
    extra = "          outbound_proxy: 192.0.2.99:5070\n          domain: pbx.example.net\n"
    site, _ = files.check(core_with(entry("A", extra=extra)))
    p = site.core("core1").softphones[0]
    assert str(p.proxy) == "192.0.2.99:5070" and p.domain == "pbx.example.net"
    assert p.auth_id == "A"


def test_duplicate_softphone_names(files):
    errors = files.errors(core_with(entry("A") + entry("A")))
    assert any("used twice" in e for e in errors)


def test_connection_variables(files, tmp_path):
    text = ONE_CORE.replace(
        "      ansible_host: 192.0.2.10",
        "      ansible_host: 2001:db8::10\n      ansible_port: 2222\n"
        "      ansible_user: qsys\n      ansible_password: file:secrets/pw.txt\n"
        "      qsipctl_jump_host: ops@192.0.2.1:22\n      qsipctl_backup_keep: 3\n"
        "      qsipctl_timeout: 5\n      qsipctl_apply_command: /usr/bin/true\n"
        "      ansible_connection: paramiko",
    )
    site, diags = files.check(text)
    assert site is not None, [d.format() for d in diags]
    c = site.core("core1").connection
    assert (c.connector, c.host, c.port, c.user) == ("ssh", "2001:db8::10", 2222, "qsys")
    assert c.password.reveal() == "s3cret-from-file"
    assert (c.jump_host, c.backup_keep, c.timeout) == ("ops@192.0.2.1:22", 3, 5.0)
    assert site.core("core1").variables["ansible_password"] == "********"


def test_local_connector_needs_dir_and_qsipctl_connector_wins(files):
    text = ONE_CORE.replace(
        "      ansible_host: 192.0.2.10",
        "      ansible_connection: ssh\n      qsipctl_connector: local",
    )
    assert any("qsipctl_local_dir" in e for e in files.errors(text))
    site, _ = files.check(
        text.replace("connector: local", "connector: local\n      qsipctl_local_dir: cores/c1")
    )
    c = site.core("core1").connection
    assert c.connector == "local" and c.local_dir == str(files.root / "cores" / "c1")


def test_same_account_registered_twice_warns(files):
    warnings = files.warnings(
        core_with(
            entry("A") + '        - name: B\n          profile: generic\n          username: "A"\n'
        )
    )
    assert any(
        "account A@192.0.2.5 is also registered by softphone 'A' on core1" in w for w in warnings
    )


def test_jinja_templates_are_expanded_and_undefined_is_an_error(files):
    errors = files.errors(ONE_CORE.replace('username: "100"', 'username: "{{ ext }}"'))
    assert len(errors) == 1, errors
    assert "host core1" in errors[0] and "'ext' is undefined" in errors[0], errors
    assert "softphones" in errors[0] and "site.yml:" in errors[0], errors
    site, _ = files.check(
        ONE_CORE.replace('username: "100"', 'username: "{{ ext }}"').replace(
            "    qsys_model: Core 110f", "    qsys_model: Core 110f\n    ext: '0100'"
        )
    )
    assert site is not None and site.core("core1").softphones[0].username == "0100"


def test_moot_core_wide_differences_are_not_conflicts(files):
    info = "          dtmf: {mode: sip-info, payload_type: %d}\n"
    site, diags = files.check(core_with(entry("A", extra=info % 101) + entry("B", extra=info % 96)))
    assert site is not None, [d.format() for d in diags]
    assert site.core("core1").settings.dtmf_mode == "sip-info"


@pytest.mark.parametrize("written", ["0100", "12:30", "0x10", "1_000", "1.10", "+15555550100"])
def test_unquoted_numbers_that_yaml_rewrites_are_errors_in_text_fields(files, written):
    """YAML 1.1 reads ``username: 0100`` as 64: the core would register the wrong extension."""
    errors = files.errors(ONE_CORE.replace('username: "100"', f"username: {written}"))
    assert len(errors) == 1 and "username" in errors[0] and f"'{written}'" in errors[0], errors
    assert "quotes" in errors[0]


def test_plain_numbers_are_fine_in_text_fields(files):
    site, diags = files.check(ONE_CORE.replace('username: "100"', "username: 5551234"))
    assert site is not None, [d.format() for d in diags]
    assert site.cores[0].softphones[0].username == "5551234"


@pytest.mark.parametrize(
    ("written", "fragment"),
    [
        ("0100", "in quotes"),
        ("+4412", "in quotes"),
        ('"env:"', "needs a name"),
        ('"file:"', "needs a name"),
    ],
)
def test_passwords_yaml_would_change_or_empty_references_are_errors(files, written, fragment):
    text = ONE_CORE.replace("password: file:secrets/pw.txt", f"password: {written}")
    errors = files.errors(text)
    assert len(errors) == 1 and fragment in errors[0] and "password" in errors[0], errors
    message = errors[0][errors[0].index("password: ") :]
    assert "0100" not in message and "4412" not in message and "64" not in message


@pytest.mark.parametrize("written", ["05060", "1:24:20"])
def test_ports_yaml_reads_as_octal_or_base_60_are_errors(files, written):
    """``sip_port: 05060`` is 2608 to YAML 1.1; pushing that would break every call."""
    text = ONE_CORE.replace("username:", f"sip_port: {written}\n          username:")
    errors = files.errors(text)
    assert len(errors) == 1 and "sip_port" in errors[0] and written in errors[0], errors


def test_dtmf_written_as_a_word(files):
    site, diags = files.check(ONE_CORE.replace("username:", "dtmf: sip-info\n          username:"))
    assert site is not None, [d.format() for d in diags]
    assert site.cores[0].settings.dtmf_mode == "sip-info"
    errors = files.errors(ONE_CORE.replace("username:", "dtmf: inband\n          username:"))
    assert len(errors) == 1 and "dtmf" in errors[0] and "out of band only" in errors[0], errors


@pytest.mark.parametrize("key", ["cid_name", "username", "domain", "name"])
def test_control_characters_in_text_fields_are_errors(files, key):
    """A CR LF in a CID name would end up inside SIP headers (header injection) and on screens."""
    bad = '"A\\r\\nVia: x\\u001b[2J"'
    if key == "username":
        text = ONE_CORE.replace('username: "100"', f"username: {bad}")
    elif key == "name":
        text = ONE_CORE.replace("name: Phone", f"name: {bad}")
    else:
        text = ONE_CORE.replace("username:", f"{key}: {bad}\n          username:")
    errors = files.errors(text)
    assert len(errors) == 1 and key in errors[0] and "control character" in errors[0], errors
    assert "\n" not in errors[0] and "\x1b" not in errors[0]


@pytest.mark.parametrize(
    ("model", "limit"),
    [
        ("Core 110f", 4),
        ("Core 510i", 64),
        ("Core 6000 CXR", 64),
        ("Core Nano", 2),
        ("Core 8 Flex", 2),
        ("Core 110c", 1),
        ("NV-32-H", 1),
    ],
)
def test_every_model_allows_exactly_its_documented_softphones(files, model, limit):
    """QSC's per-model softphone limits (issue 2): the limit fits, one more is an error."""
    at_limit = "".join(entry(f"p{i}") for i in range(limit))
    site, diags = files.check(core_with(at_limit, model=model))
    assert site is not None, [d.format() for d in diags][:3]
    errors = files.errors(core_with(at_limit + entry("extra"), model=model))
    expected = f"has {limit + 1} softphones but a {model} allows {limit}"
    assert len(errors) == 1 and expected in errors[0], errors


def test_explicit_limit_may_lower_but_not_raise_a_known_models_limit(files):
    """The model's limit is QSC's; qsys_softphone_limit cannot lift a Nano to 3 softphones."""
    three = entry("A") + entry("B") + entry("C")
    text = core_with(three, model="Core Nano").replace(
        "    qsys_model: Core Nano", "    qsys_model: Core Nano\n    qsys_softphone_limit: 8"
    )
    errors = files.errors(text)
    assert len(errors) == 2, errors
    assert "qsys_softphone_limit: a Core Nano allows at most 2" in errors[0]
    assert "core1 has 3 softphones but a Core Nano allows 2" in errors[1]
    lowered = core_with(entry("A") + entry("B"), model="Core 110f").replace(
        "    qsys_model: Core 110f", "    qsys_model: Core 110f\n    qsys_softphone_limit: 1"
    )
    errors = files.errors(lowered)
    assert len(errors) == 1 and "has 2 softphones but a Core 110f allows 1" in errors[0], errors


def test_ipv6_registrar_with_port_in_last_group_warns(files):
    from tests.unit.site.conftest import ONE_CORE

    text = ONE_CORE.replace("registrar: 192.0.2.5:5060", 'registrar: "2001:db8::1:5060"')
    site, diags = files.check(text)
    assert site is not None  # a warning: the address is legal
    [warning] = [d.format() for d in diags if d.severity == "warning"]
    assert "site.yml:10:11: all.hosts.core1.softphones[0].registrar: " in warning
    assert "write '[2001:db8::1]:5060'" in warning
    assert str(site.core("core1").softphones[0].proxy) == "[2001:db8::1:5060]"


def test_ipv6_port_hint_in_a_profile_names_the_profile_line(files):
    files.profile("v6pbx", 'extends: generic\nregistrar: "2001:db8::1:5060"\n')
    text = ONE_CORE_NO_REGISTRAR.replace("profile: generic", "profile: v6pbx")
    site, diags = files.check(text)
    assert site is not None
    [warning] = [d.format() for d in diags if d.severity == "warning"]
    assert "v6pbx.yml:2:1: registrar: " in warning and "'[2001:db8::1]:5060'" in warning


ONE_CORE_NO_REGISTRAR = """\
all:
  vars:
    qsys_model: Core 110f
  hosts:
    core1:
      softphones:
        - profile: generic
          username: "100"
          password: file:secrets/pw.txt
"""
