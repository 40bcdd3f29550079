"""tls.ca_file: resolved beside the file that sets it, checked by validate."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from qsipctl.site.load import load_site
from qsipctl.site.render import render_core

TLS_SITE = """\
all:
  vars:
    qsys_model: Core 110f
  hosts:
    core1:
      ansible_host: 192.0.2.10
      softphones:
        - name: Phone
          profile: generic
          registrar: 192.0.2.5:5061
          transport: {transport}
          tls: {{ca_file: {ca_file}, verify: {verify}}}
          username: "100"
          password: file:secrets/pw.txt
"""


def make_ca(path: Path) -> Path:
    """A real self-signed CA certificate, made by the openssl CLI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(path.with_suffix(".key")), "-out", str(path),
         "-subj", "/CN=qsipctl test CA", "-days", "2"],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def tls_site(ca_file="certs/ca.pem", transport="tls", verify="true"):
    return TLS_SITE.format(ca_file=ca_file, transport=transport, verify=verify)


def test_relative_ca_file_resolves_beside_the_inventory_not_the_cwd(files, tmp_path, monkeypatch):
    ca = make_ca(tmp_path / "certs" / "ca.pem")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    site = load_site(files.site(tls_site()))
    phone = site.core("core1").softphones[0]
    assert phone.tls.ca_file == str(ca)
    document = json.loads(render_core(site.core("core1")).document)
    assert document["softphones"][0]["tls"]["ca_file"] == "certs/ca.pem"  # as written


def test_relative_ca_file_in_a_profile_resolves_beside_the_profile(files, tmp_path):
    ca = make_ca(tmp_path / "profiles" / "pki" / "pbx-ca.pem")
    files.profile("tlspbx", "extends: generic\ntransport: tls\ntls:\n  ca_file: pki/pbx-ca.pem\n")
    text = tls_site().replace("profile: generic", "profile: tlspbx")
    text = text.replace("          tls: {ca_file: certs/ca.pem, verify: true}\n", "")
    site = load_site(files.site(text))
    assert site.core("core1").softphones[0].tls.ca_file == str(ca)


def test_probe_target_gets_a_loadable_ca_path(files, tmp_path, monkeypatch):
    from qsipctl.net.transport import make_ssl_context
    from qsipctl.probes.target import softphone_target

    make_ca(tmp_path / "certs" / "ca.pem")
    site = load_site(files.site(tls_site()))
    monkeypatch.chdir("/")
    core = site.core("core1")
    target = softphone_target(core, core.softphones[0])
    context = make_ssl_context(target.tls)
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "qsipctl test CA"),),)
    ]


def test_missing_ca_file_with_tls_and_verify_is_an_error(files):
    [error] = files.errors(tls_site())
    assert "site.yml:12:17: all.hosts.core1.softphones[0].tls.ca_file: CA file " in error
    assert "certs/ca.pem does not exist" in error


@pytest.mark.parametrize(
    ("transport", "verify", "reason"),
    [("udp", "true", "transport is udp"), ("tls", "false", "tls.verify is off")],
)
def test_missing_ca_file_where_unused_is_a_warning(files, transport, verify, reason):
    text = tls_site(transport=transport, verify=verify)
    assert files.errors(text) == []
    [warning] = files.warnings(text)
    assert "all.hosts.core1.softphones[0].tls.ca_file: warning: CA file " in warning
    assert f"does not exist (not used while {reason})" in warning


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no PEM certificate"),
        (b"just some text\n", "holds no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
         "holds no usable PEM certificate"),
    ],
)  # fmt: skip
def test_empty_or_bogus_ca_file_is_an_error(files, tmp_path, content, message):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(content)
    [error] = files.errors(tls_site())
    assert "softphones[0].tls.ca_file: " in error and message in error


def test_ca_file_that_is_a_directory_is_an_error(files, tmp_path):
    (tmp_path / "certs" / "ca.pem").mkdir(parents=True)
    [error] = files.errors(tls_site())
    assert "ca.pem is not a regular file" in error


def test_missing_ca_file_set_in_a_profile_names_the_profile_line(files):
    files.profile("tlspbx", "extends: generic\ntransport: tls\ntls:\n  ca_file: pki/none.pem\n")
    text = tls_site().replace("profile: generic", "profile: tlspbx")
    text = text.replace("          tls: {ca_file: certs/ca.pem, verify: true}\n", "")
    [error] = files.errors(text)
    assert "tlspbx.yml:4:3: tls.ca_file: CA file " in error
    assert "profiles/pki/none.pem does not exist" in error
