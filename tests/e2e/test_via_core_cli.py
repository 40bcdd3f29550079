"""``qsipctl diagnose SITE.yml --via-core`` end to end: the installed CLI, a site file,
QRC stand-in cores whose softphones are real baresips calling through Kamailio."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.common import cli_command, free_port, run_cli, wait_until
from tests.fixtures.kamailio import LabCA
from tests.fixtures.qrc_standin import Lab, QrcStandin, Softphone, via_core_lab

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
QRC_PW = "qrc-secret-Zq9"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, test_ca: LabCA) -> Iterator[Lab]:
    yield from via_core_lab(tmp_path_factory.mktemp("via-core-cli"), test_ca)


def site(tmp: Path, cores: list[tuple[str, QrcStandin, str]], test_number: str | None) -> Path:
    """A site whose cores point their QRC port at stand-ins (name, stand-in, code name)."""
    lines = ["all:", "  hosts:"]
    for name, core, code_name in cores:
        lines += [
            f"    {name}:",
            "      ansible_host: 127.0.0.1",
            "      qsys_model: Core 110f",
            f"      qsys_qrc_port: {core.port}",
            "      qsys_qrc_user: qsipctl",
            "      qsys_qrc_password: env:QRC_PW",
            "      softphones:",
            "        - name: Lobby Phone",
            f"          code_name: {code_name}",
            "          profile: generic",
            '          username: "1001"',
            "          password: env:QRC_PW",
            "          registrar: 127.0.0.1:5060",
        ]
        if test_number:
            lines.append(f'          test_number: "{test_number}"')
    path = tmp / "site.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def standin(factory, phone: Softphone) -> QrcStandin:  # type: ignore[no-untyped-def]
    return factory([phone], user="qsipctl", password=QRC_PW)  # type: ignore[no-any-return]


def test_two_cores_dotted_and_underscored_json(lab: Lab, qrc_standin_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = standin(qrc_standin_factory, Softphone("Softphone-Lobby", lab.registrar, lab.uas["1001"]))
    b = standin(
        qrc_standin_factory,
        Softphone("SP_Lobby", lab.registrar, lab.uas["1002"], style="underscored"),
    )
    path = site(tmp_path, [("core-a", a, "Softphone-Lobby"), ("core-b", b, "SP_Lobby")], "2002")
    with lab.answerer.control() as far:
        res = run_cli("diagnose", str(path), "--via-core", "--dtmf", "5#", "--duration", "0.5",
                      "--format", "json", env={"QRC_PW": QRC_PW})  # fmt: skip
        assert res.returncode == 0, res.stderr + res.stdout
        # two calls at once into one far end: each sent 5 then #, interleaved
        wait_until(lambda: sorted(far.dtmf_received()) == sorted("5#5#"), 5)
    doc = json.loads(res.stdout)
    assert doc["summary"] == {"total": 2, "ok": 2, "failed": 0}
    assert [r["verdict"] for r in doc["results"]] == ["connected", "connected"]
    assert {r["controls"]["connect"] for r in doc["results"]} == {"call.connect", "call_connect"}
    assert all(r["group_destroyed"] and r["hung_up"] for r in doc["results"])
    assert QRC_PW not in res.stdout + res.stderr
    for core in (a, b):
        assert core.calls("ChangeGroup.Destroy") and core.live_groups() == 0


def test_table_output_and_to_overrides_the_test_number(  # type: ignore[no-untyped-def]
    lab: Lab, qrc_standin_factory, tmp_path
) -> None:
    a = standin(qrc_standin_factory, Softphone("Softphone-Lobby", lab.registrar, lab.uas["1003"]))
    path = site(tmp_path, [("core-a", a, "Softphone-Lobby")], None)
    res = run_cli("diagnose", str(path), "--via-core", "--to", "4486", env={"QRC_PW": QRC_PW})
    assert res.returncode == 1, res.stderr
    assert "busy" in res.stdout and "core-a" in res.stdout
    assert "not knowable over QRC: registration state" in res.stdout
    assert a.phones["Softphone-Lobby"].dials == ["4486"]


def test_bad_input_is_one_line_and_exit_2(lab: Lab, qrc_standin_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = standin(qrc_standin_factory, Softphone("Softphone-Lobby", lab.registrar, None))
    path = site(tmp_path, [("core-a", a, "Softphone-Lobby")], None)
    res = run_cli("diagnose", str(path), "--via-core", env={"QRC_PW": QRC_PW})
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "set test_number" in res.stderr
    res = run_cli("diagnose", str(path), "--via-core", "--to", "2002", "--dtmf", "12x",
                  env={"QRC_PW": QRC_PW})  # fmt: skip
    assert res.returncode == 2 and "'x' is not a keypad digit" in res.stderr
    res = run_cli("diagnose", str(path), "--via-core", "--register", "--to", "2002",
                  env={"QRC_PW": QRC_PW})  # fmt: skip
    assert res.returncode == 2 and "runs on its own" in res.stderr
    assert "Traceback" not in res.stderr
    assert a.connections == 0  # nothing was contacted


def test_unreachable_core_is_a_failed_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    class Nowhere:
        port = free_port()

    path = site(tmp_path, [("core-x", Nowhere, "Softphone-1")], "2002")  # type: ignore[list-item]
    res = run_cli("diagnose", str(path), "--via-core", "--format", "json", "--timeout", "2",
                  env={"QRC_PW": QRC_PW})  # fmt: skip
    assert res.returncode == 1, res.stderr
    [r] = json.loads(res.stdout)["results"]
    assert r["verdict"] == "unreachable" and "cannot connect" in r["message"]


def test_ctrl_c_hangs_up_and_destroys_the_change_group(  # type: ignore[no-untyped-def]
    lab: Lab, qrc_standin_factory, tmp_path
) -> None:
    phone = Softphone("Softphone-Lobby", lab.registrar, lab.uas["1004"])
    a = standin(qrc_standin_factory, phone)
    path = site(tmp_path, [("core-a", a, "Softphone-Lobby")], "2002")
    env = {**os.environ, "QRC_PW": QRC_PW, "NO_COLOR": "1"}
    with lab.answerer.control() as far:
        proc = subprocess.Popen(
            [*cli_command(), "diagnose", str(path), "--via-core", "--duration", "120"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_until(lambda: phone.get("state") == "Connected", 20)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        far.wait_event("CALL_CLOSED", 5)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert phone.hangups == 1 and not phone.get("offhook")
    assert a.calls("ChangeGroup.Destroy"), a.methods()
    assert a.methods()[-1] == "ChangeGroup.Destroy"
    wait_until(lambda: a.open_connections == 0, 5)
    assert a.live_groups() == 0 and not a.dropped_groups  # destroyed, not merely dropped
