"""``diagnose --via-core --answer-as``: the core calls qsipctl, qsipctl checks the core's INVITE.

The stand-in core's softphone is a real baresip registered to a real
Kamailio; qsipctl binds the test account 2004 there (binding-safe), the
stand-in dials 2004 over QRC, and the INVITE baresip sends is compared with
the site's settings for that core: once with baresip's codecs as the site
says (all checks pass) and once with G.722 enabled on the "core" although the
site lists only G.711 (the codec check differs).  (baresip offers codecs in
its modules' order whatever ``audio_codecs`` says, so the mismatch is a codec
set, not an order.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.baresip import Baresip, start_baresip
from tests.fixtures.common import run_cli
from tests.fixtures.kamailio import Kamailio
from tests.fixtures.qrc_standin import Softphone

pytestmark = pytest.mark.integration

ACCOUNTS = {"1001": "pw-1001", "1002": "pw-1002", "2004": "pw-2004"}
ENV = {"PW2004": "pw-2004", "PWSITE": "pw-1001"}


@pytest.fixture(scope="module")
def pbx(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory(accounts=ACCOUNTS, calls=True)


@pytest.fixture(scope="module")
def phones(pbx: Kamailio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Baresip]]:
    """The stand-in core's softphone: codecs as the site says, and with G.722 too."""
    tmp = tmp_path_factory.mktemp("answer-as")
    reg = f"127.0.0.1:{pbx.udp_port}"
    started: dict[str, Baresip] = {}
    try:
        started["match"] = start_baresip(tmp / "match", "1001", "pw-1001", reg,
                                         codecs="PCMU/8000/1,PCMA/8000/1")  # fmt: skip
        g722 = "PCMU/8000/1,PCMA/8000/1,G722/16000/1"
        started["mismatch"] = start_baresip(tmp / "mismatch", "1002", "pw-1002", reg, codecs=g722)
        yield started
    finally:
        for b in started.values():
            b.stop()


def _site(tmp: Path, qrc_port: int, registrar: str) -> Path:
    path = tmp / "site.yml"
    path.write_text(
        f"""all:
  hosts:
    core-a:
      ansible_host: 127.0.0.1
      qsys_model: Core 110f
      qsys_qrc_port: {qrc_port}
      softphones:
        - name: Lobby
          code_name: Softphone-Lobby
          profile: generic
          username: "1001"
          password: env:PWSITE
          registrar: {registrar}
          codecs: [PCMU, PCMA]
"""
    )
    return path


def _run(pbx: Kamailio, phone: Baresip, factory, tmp_path: Path, fmt: str = "json"):  # type: ignore[no-untyped-def]
    registrar = f"127.0.0.1:{pbx.udp_port}"
    core = factory([Softphone("Softphone-Lobby", registrar, phone)])
    res = run_cli(
        "diagnose", str(_site(tmp_path, core.port, registrar)), "--via-core",
        "--answer-as", f"sip:2004@{registrar}", "--answer-password-env", "PW2004",
        "--duration", "1.5", "--ring-timeout", "10", "--format", fmt, env=ENV,
    )  # fmt: skip
    assert "Traceback" not in res.stderr, res.stderr
    assert pbx.bindings("2004") == []  # our binding is gone
    assert core.live_groups() == 0 and core.calls("ChangeGroup.Destroy")
    assert "pw-2004" not in res.stdout + res.stderr
    if fmt != "json":
        return res.returncode, res.stdout, res.stderr
    return res.returncode, json.loads(res.stdout), res.stderr


def test_the_core_offers_what_the_site_says(
    pbx: Kamailio, phones: dict[str, Baresip], qrc_standin_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    rc, doc, err = _run(pbx, phones["match"], qrc_standin_factory, tmp_path)
    [r] = doc["results"]
    [one] = doc["inbound"]
    checks = {c["item"]: c for c in one["checks"]}
    assert checks["codecs and order"]["seen"] == "PCMU, PCMA", checks
    assert all(c["ok"] for c in one["checks"]), one["checks"]
    assert checks["telephone-event payload type"]["seen"] == "101"
    assert checks["SRTP"]["seen"] == "RTP/AVP" and "127.0.0.1" in checks["SDP address"]["seen"]
    assert one["core_call"]["verdict"] == "connected" and one["core_call"]["number"] == "2004"
    assert one["inbound"]["codec"] == "PCMU" and one["inbound"]["media"]["audio"]["kind"] == "tone"
    assert r["ok"] and r["softphone"] == "Lobby" and r["unregistered"] is True
    assert rc == 0, err


def test_a_different_codec_list_is_shown(
    pbx: Kamailio, phones: dict[str, Baresip], qrc_standin_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    rc, doc, _ = _run(pbx, phones["mismatch"], qrc_standin_factory, tmp_path)
    checks = {c["item"]: c for c in doc["inbound"][0]["checks"]}
    codecs = checks["codecs and order"]
    assert not codecs["ok"] and codecs["expected"] == "PCMU, PCMA"
    assert codecs["seen"] == "PCMU, PCMA, G722"
    assert checks["early offer"]["ok"] and checks["SRTP"]["ok"]
    assert rc == 1  # provision's settings did not take effect on this core


def test_table_names_the_difference(
    pbx: Kamailio, phones: dict[str, Baresip], qrc_standin_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    rc, out, _ = _run(pbx, phones["mismatch"], qrc_standin_factory, tmp_path, fmt="table")
    line = next(x for x in out.splitlines() if "vs site: codecs and order" in x)
    assert "DIFFERS" in line and "PCMU, PCMA, G722" in line
    assert "core's call" in out and "connected" in out
    assert rc == 1
