"""The rendered document: exact, deterministic, secrets only where pushed."""

import hashlib
import json

import pytest

from qsipctl.errors import InvalidInput
from qsipctl.site.load import load_site
from qsipctl.site.render import SCHEMA, VERSION, render_core
from qsipctl.site.sheet import build_sheet
from tests.unit.site.conftest import ONE_CORE


def test_document_shape_and_determinism(files):
    path = files.site(ONE_CORE)
    a = render_core(load_site(path).core("core1"))
    b = render_core(load_site(path).core("core1"))
    assert a.document == b.document and a.sha256 == b.sha256
    assert a.sha256 == hashlib.sha256(a.document).hexdigest()
    doc = json.loads(a.document)
    assert (doc["schema"], doc["version"]) == (SCHEMA, VERSION)
    assert (
        a.document.decode() == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )
    settings = doc["core_settings"]
    assert settings["early_offer"] is True
    assert settings["dtmf"] == {"mode": "rfc2833", "payload_type": 101}
    assert settings["codecs"] == ["PCMU", "PCMA", "G722"]
    phone = doc["softphones"][0]
    assert phone["password"] == "s3cret-from-file"
    assert phone["proxy"] == "192.0.2.5:5060" and phone["tls"] is None
    assert "session_timer" not in a.document.decode()  # expectations are never pushed


def test_masked_has_no_secret(files):
    r = render_core(load_site(files.site(ONE_CORE)).core("core1"))
    assert "s3cret-from-file" not in r.masked
    assert json.loads(r.masked)["softphones"][0]["password"] == "********"
    assert "s3cret" not in repr(r.core) and "s3cret" not in str(r.core)


def test_secret_change_changes_hash_but_not_masked(files):
    path = files.site(ONE_CORE)
    before = render_core(load_site(path).core("core1"))
    (files.root / "secrets" / "pw.txt").write_text("other\n")
    after = render_core(load_site(path).core("core1"))
    assert before.sha256 != after.sha256 and before.masked == after.masked


def test_unresolvable_secret_raises_invalid_input(files, monkeypatch):
    monkeypatch.delenv("QSIP_RENDER_NOPE", raising=False)
    path = files.site(ONE_CORE.replace("file:secrets/pw.txt", "env:QSIP_RENDER_NOPE"))
    core = load_site(path, check_secrets=False).core("core1")
    with pytest.raises(InvalidInput) as info:
        render_core(core)
    line = info.value.lines()[0]
    assert "site.yml:12:" in line and "softphones[0].password" in line
    assert "QSIP_RENDER_NOPE is not set" in line


def test_sip_info_has_no_payload_type_and_tls_block(files):
    from tests.unit.site.test_cafile import make_ca

    ca = make_ca(files.root / "ssl" / "pbx.pem")  # validate now checks the CA file exists
    text = ONE_CORE.replace(
        "          password: file:secrets/pw.txt",
        "          password: file:secrets/pw.txt\n          dtmf: {mode: sip-info}\n"
        f"          transport: tls\n          tls: {{ca_file: {ca}}}",
    )
    doc = json.loads(render_core(load_site(files.site(text)).core("core1")).document)
    assert doc["core_settings"]["dtmf"] == {"mode": "sip-info", "payload_type": None}
    assert doc["softphones"][0]["tls"] == {
        "ca_file": str(ca),
        "server_name": None,
        "verify": True,
    }


def test_sheet_follows_core_manager_labels(files):
    core = load_site(files.site(ONE_CORE)).core("core1")
    sheet = build_sheet(core)
    labels = [k for k, _ in sheet.core_wide]
    assert labels[:6] == ["Core Interface", "SIP Port", "SRTP", "DTMF", "STUN", "Audio Codecs"]
    _title, rows, _ = sheet.softphones[0]
    assert [k for k, _ in rows] == [
        "Username",
        "CID Name",
        "Transport",
        "Proxy",
        "Backup Proxy",
        "Register with Proxy",
        "Authentication ID",
        "Password",
        "Domain",
        "Registration Timeout",
    ]
    assert dict(rows)["Password"] == "********"
    assert dict(sheet.core_wide)["Audio Codecs"] == "1. G.711 µ-law, 2. G.711 A-law, 3. G.722"


def test_sheet_keeps_every_note_in_json_and_spells_keepalive_none(files):
    text = ONE_CORE.replace(
        "username:",
        'notes: ["first note", "second note"]\n          keepalive: {method: none}\n'
        "          username:",
    )
    core = load_site(files.site(text)).core("core1")
    expects = build_sheet(core).as_dict()["softphones"][0]["pbx_expects"]
    assert expects["Note 1"] == "first note" and expects["Note 2"] == "second note"
    assert expects["Keep-alive"] == "None"


def test_sheet_single_note_keeps_its_label(files):
    text = ONE_CORE.replace("username:", 'notes: ["only note"]\n          username:')
    core = load_site(files.site(text)).core("core1")
    expects = build_sheet(core).as_dict()["softphones"][0]["pbx_expects"]
    assert expects["Note"] == "only note"
