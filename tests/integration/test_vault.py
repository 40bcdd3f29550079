"""Ansible Vault values made by the real ansible-vault, decrypted by qsipctl (issue 11, point 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qsipctl.site.vault import VaultError, VaultKeys, VaultPasswordError, load_keys
from tests.fixtures.ansible import Ansible, ansible  # noqa: F401  (fixture)
from tests.fixtures.common import run_cli

pytestmark = pytest.mark.integration

SITE = """\
all:
  vars:
    qsys_model: Core 110f
    ansible_password: {inline}
  hosts:
    core1:
      ansible_host: 192.0.2.10
      softphones:
        - name: Phone
          profile: generic
          registrar: 192.0.2.5
          username: "100"
          password: "{{{{ vault_sip_password }}}}"
"""


@pytest.fixture()
def vaulted(tmp_path: Path, ansible: Ansible) -> dict[str, Path]:  # noqa: F811
    default_pw = tmp_path / "default.pw"
    default_pw.write_text("  default-pass  \n")  # surrounding whitespace is stripped, as ansible
    lab_pw = tmp_path / "lab.pw"
    lab_pw.write_text("lab-pass\n")
    inline = ansible.vault_encrypt_string("ssh-secret", default_pw)
    site = tmp_path / "site.yml"
    site.write_text(SITE.format(inline=inline.replace("\n", "\n    ")))
    gv = tmp_path / "group_vars" / "all.yml"
    gv.parent.mkdir()
    gv.write_text("vault_sip_password: sip-secret\n")
    ansible.vault_encrypt_file(gv, lab_pw, "lab")
    return {"site": site, "default": default_pw, "lab": lab_pw, "root": tmp_path}


def test_inline_11_and_file_12_decrypt(vaulted):
    from qsipctl.site.load import load_site

    keys = load_keys([str(vaulted["default"])], [f"lab@{vaulted['lab']}"], environ=False)
    core = load_site(vaulted["site"], vault=keys).core("core1")
    assert core.connection.password is not None
    assert core.connection.password.reveal() == "ssh-secret"
    assert core.softphones[0].password.reveal() == "sip-secret"
    assert core.softphones[0].password.describe() == "vault"


def test_cli_options_and_environment_variable(vaulted):
    res = run_cli(
        "render", str(vaulted["site"]), "--show-secrets", "--vault-id", f"lab@{vaulted['lab']}",
        env={"ANSIBLE_VAULT_PASSWORD_FILE": str(vaulted["default"])},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "sip-secret" in res.stdout
    masked = run_cli(
        "render", str(vaulted["site"]), "--vault-password-file", str(vaulted["default"]),
        "--vault-id", f"lab@{vaulted['lab']}",
    )  # fmt: skip
    assert masked.returncode == 0 and "sip-secret" not in masked.stdout


def test_no_or_wrong_password_is_one_clear_line(vaulted):
    res = run_cli("validate", str(vaulted["site"]))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    [line] = res.stderr.splitlines()[:1]
    assert "site.yml:4:23: this value is vault-encrypted but no vault password was given" in line
    wrong = vaulted["root"] / "wrong.pw"
    wrong.write_text("nope\n")
    res = run_cli("validate", str(vaulted["site"]), "--vault-password-file", str(wrong))
    assert res.returncode == 2
    assert f"wrong vault password: none of default@{wrong} decrypts this value" in res.stderr


def test_prompt_without_a_terminal_is_refused_at_once(vaulted):
    """Scripted runs never wait at a password prompt (run_cli's stdin is not a terminal)."""
    res = run_cli("--vault-id", "lab@prompt", "validate", str(vaulted["site"]), input="")
    assert res.returncode == 2 and "Vault password" not in res.stdout + res.stderr
    assert res.stderr.strip().splitlines() == [
        "qsipctl: error: --vault-id lab@prompt needs a terminal; give a password file instead"
    ]


def test_inventory_and_no_secrets_work_without_the_password(vaulted):
    res = run_cli("validate", str(vaulted["site"]), "--no-secrets")
    assert res.returncode == 0, res.stderr
    res = run_cli("inventory", str(vaulted["site"]), "--host", "core1")
    assert res.returncode == 0, res.stderr
    assert "ansible_password" in res.stdout and "********" in res.stdout


def test_vault_ids_prefer_the_matching_label_and_refuse_scripts(vaulted):
    text = (vaulted["root"] / "group_vars" / "all.yml").read_text()
    assert text.startswith("$ANSIBLE_VAULT;1.2;AES256;lab")
    keys = load_keys([], [f"other@{vaulted['default']}", f"lab@{vaulted['lab']}"], environ=False)
    assert "sip-secret" in keys.decrypt(text)
    with pytest.raises(VaultPasswordError, match="vault id 'lab'"):
        load_keys([str(vaulted["default"])], environ=False).decrypt(text)
    script = vaulted["root"] / "pw.sh"
    script.write_text("#!/bin/sh\necho lab-pass\n")
    script.chmod(0o755)
    with pytest.raises(VaultError, match="executable"):
        load_keys([str(script)], environ=False)
    with pytest.raises(VaultError, match="damaged vault value"):
        VaultKeys(keys.secrets).decrypt("$ANSIBLE_VAULT;1.1;AES256\nzz\n")
    with pytest.raises(VaultError, match=r"unsupported vault format 1\.0"):
        VaultKeys(keys.secrets).decrypt("$ANSIBLE_VAULT;1.0;AES256\n00\n")


def test_vault_options_before_the_command_reach_every_command(vaulted):
    """provision and diagnose have no vault options of their own: ``qsipctl --vault-id ...``."""
    res = run_cli(
        "--vault-password-file", str(vaulted["default"]), "--vault-id", f"lab@{vaulted['lab']}",
        "render", str(vaulted["site"]), "--show-secrets",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "sip-secret" in res.stdout
    res = run_cli(
        "--vault-id", f"lab@{vaulted['lab']}", "render", str(vaulted["site"]),
        "--vault-password-file", str(vaulted["default"]),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
