"""The register probe on a live site: a real core (SIPp) bound to the account, real Kamailio.

Kamailio runs in both modes a PBX can have: several contacts per account
(the shared default instance) and one contact per AoR, replaced by the
newest (``save("location", "0x04")``, as FreePBX ``max_contacts=1`` with
``remove_existing``).  What usrloc holds is read with ``kamcmd ul.lookup``
before and after each probe, Call-ID and CSeq included: "left exactly as
found" is checked on the binding itself, not on the probe's own report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.common import cli_command, run_cli, wait_until
from tests.fixtures.kamailio import Kamailio
from tests.fixtures.sipp import register_core

pytestmark = pytest.mark.integration

SILENT = "1900"  # its binding REGISTER is saved but never answered
NO_QUERY = "1950"  # a REGISTER without Contact gets 400 Missing Contact
ACCOUNTS = {
    "1001": "secret-1001", "1002": "secret-1002", SILENT: "secret-1900", NO_QUERY: "secret-1950"
}  # fmt: skip
ENV = {"PW1001": "secret-1001", "PW1900": "secret-1900", "PW1950": "secret-1950", "PWBAD": "nope"}


@pytest.fixture(scope="module")
def one_contact(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    """A PBX that keeps one contact per account and replaces it with the newest."""
    return kamailio_factory(accounts=ACCOUNTS, save_flags="0x04", silent_users=(SILENT,))


@pytest.fixture(scope="module")
def several_contacts(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    """A PBX that keeps every contact of an account (Kamailio's default)."""
    return kamailio_factory(accounts=ACCOUNTS, silent_users=(SILENT,), no_query_users=(NO_QUERY,))


@pytest.fixture(params=["one-contact", "several-contacts"])
def pbx(request: pytest.FixtureRequest) -> Kamailio:
    k: Kamailio = request.getfixturevalue(request.param.replace("-", "_"))
    k.clear()
    return k


def _core(k: Kamailio, tmp_path: Path, user: str = "1001") -> str:
    contact = register_core(tmp_path / "core", k.udp_port, user, ACCOUNTS[user])
    assert [b["Address"] for b in k.bindings(user)] == [contact]  # precondition: live core
    return contact


def _untouched(binding: dict[str, str]) -> tuple[str, ...]:
    return binding["Address"], binding["Call-ID"], binding["CSeq"], binding["User-Agent"]


def _probe(k: Kamailio, *args: str, user: str = "1001") -> tuple[int, dict, str]:
    res = run_cli(
        "probe", "register", f"sip:{user}@127.0.0.1:{k.udp_port}",
        "--password-env", f"PW{user}", "--format", "json", *args, env=ENV,
    )  # fmt: skip
    assert "Traceback" not in res.stderr
    [r] = json.loads(res.stdout)["results"]
    return res.returncode, r, res.stderr


def test_default_probe_reports_the_core_and_leaves_its_binding_exactly(
    pbx: Kamailio, tmp_path: Path
) -> None:
    contact = _core(pbx, tmp_path)
    [before] = pbx.bindings("1001")
    rc, r, _ = _probe(pbx)
    assert rc == 0 and r["ok"] and r["mode"] == "query"
    port = contact.rsplit(":", 1)[1]
    assert r["message"].startswith(f"credentials accepted; bound from 127.0.0.1:{port}, ")
    [listed] = r["bindings"]
    assert listed["contact"] == contact and 3500 < listed["expires"] <= 3600
    [after] = pbx.bindings("1001")
    assert _untouched(after) == _untouched(before)  # same contact, Call-ID, CSeq: untouched


def test_default_probe_says_when_the_core_is_not_registered(pbx: Kamailio) -> None:
    rc, r, _ = _probe(pbx)
    assert (
        rc == 0 and r["message"] == "credentials accepted; no binding: the core is not registered"
    )
    assert pbx.bindings("1001") == []


def test_bind_is_refused_while_the_core_is_bound(pbx: Kamailio, tmp_path: Path) -> None:
    _core(pbx, tmp_path)
    [before] = pbx.bindings("1001")
    rc, r, _ = _probe(pbx, "--bind")
    assert rc == 1 and r["verdict"] == "in-use"
    assert "credentials accepted" in r["message"] and "--force" in r["message"]
    [after] = pbx.bindings("1001")
    assert _untouched(after) == _untouched(before)


def test_forced_bind_on_a_one_contact_pbx_names_the_displacement(
    one_contact: Kamailio, tmp_path: Path
) -> None:
    one_contact.clear()
    contact = _core(one_contact, tmp_path)
    rc, r, stderr = _probe(one_contact, "--bind", "--force")
    assert rc == 0 and r["ok"] and r["unregistered"] is True
    assert (
        "our binding displaced the core's (the PBX keeps one contact per account)" in (r["message"])
    )
    assert [d["contact"] for d in r["displaced"]] == [contact]
    assert "unreachable, until it registers again" in stderr
    assert one_contact.bindings("1001") == []  # what the warning says: the core is off


def test_forced_bind_on_a_several_contacts_pbx_leaves_the_core(
    several_contacts: Kamailio, tmp_path: Path
) -> None:
    several_contacts.clear()
    _core(several_contacts, tmp_path)
    [before] = several_contacts.bindings("1001")
    rc, r, _ = _probe(several_contacts, "--bind", "--force")
    assert rc == 0 and r["ok"] and r["displaced"] == [] and r["unregistered"] is True
    assert "the PBX keeps several contacts per account" in r["message"]
    [after] = several_contacts.bindings("1001")  # ours came and went; the core's stayed
    assert _untouched(after) == _untouched(before)


def test_no_ghost_binding_when_the_2xx_never_comes(pbx: Kamailio) -> None:
    rc, r, stderr = _probe(pbx, "--bind", "--timeout", "1", user=SILENT)
    assert rc == 1 and r["verdict"] == "timeout"
    assert r["unregistered"] is True and r["leftover"] is None
    assert "may have bound us, so the binding is removed anyway" in stderr
    assert pbx.bindings(SILENT) == []


@pytest.mark.parametrize(
    ("sig", "fmt"),
    [(signal.SIGINT, "table"), (signal.SIGTERM, "json")],
    ids=["SIGINT", "SIGTERM-json"],
)
def test_interrupted_mid_probe_still_unregisters(
    several_contacts: Kamailio, sig: signal.Signals, fmt: str
) -> None:
    """Ctrl-C or SIGTERM after the PBX bound us, before its answer: the binding goes."""
    k = several_contacts
    k.clear()
    proc = subprocess.Popen(
        [*cli_command(), "probe", "register", f"sip:{SILENT}@127.0.0.1:{k.udp_port}",
         "--password-env", "PW1900", "--bind", "--timeout", "30", "--format", fmt],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **ENV, "NO_COLOR": "1"},
        # a shell that ran the suite in the background ignores SIGINT, and children inherit
        # that: give this one a terminal user's default, as Ctrl-C meets it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        wait_until(lambda: bool(k.bindings(SILENT)), timeout=20, interval=0.05)
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    assert "our temporary binding sip:1900@127.0.0.1:" in err and "was removed" in err
    assert "Traceback" not in err
    if fmt == "json":
        doc = json.loads(out)
        assert doc["interrupted"] is True and doc["results"] == []
        [cleanup] = doc["cleanups"]
        assert cleanup["state"] == "removed" and cleanup["contact"].startswith("sip:1900@")
    assert k.bindings(SILENT) == []


def test_diagnose_on_a_live_site_changes_no_binding_and_skips_ip_trunks(
    one_contact: Kamailio, tmp_path: Path
) -> None:
    """The issue's "done when": a site whose cores are live is left exactly as found.

    The Teams room line (register: false, IP-authenticated) is not registered
    but checked with OPTIONS; the site is correct, so exit 0.
    """
    k = one_contact
    k.clear()
    _core(k, tmp_path)
    [before] = k.bindings("1001")
    site = tmp_path / "site.yml"
    site.write_text(
        f"""all:
  vars:
    qsys_model: Core 110f
  hosts:
    lobby-core:
      ansible_host: 127.0.0.1
      softphones:
        - name: Lobby Phone
          profile: generic
          registrar: 127.0.0.1:{k.udp_port}
          username: "1001"
          password: env:PW1001
    room-01:
      ansible_host: 127.0.0.1
      softphones:
        - name: Teams Room Line
          profile: teams-sbc
          registrar: 127.0.0.1:{k.udp_port}
          username: rooms
          register: false
"""
    )
    res = run_cli("diagnose", str(site), "--register", "--format", "json", env=ENV)
    assert res.returncode == 0, res.stdout + res.stderr
    by = {(r["probe"], r["core"]): r for r in json.loads(res.stdout)["results"]}
    assert set(by) == {("register", "lobby-core"), ("options", "room-01")}
    assert by[("register", "lobby-core")]["message"].startswith("credentials accepted; bound from")
    assert by[("options", "room-01")]["softphone"] == "Teams Room Line"
    assert "room-01/Teams Room Line: register: false (IP-authenticated)" in res.stderr
    [after] = k.bindings("1001")
    assert _untouched(after) == _untouched(before)
    assert k.bindings("rooms") == []


def test_wrong_password_names_the_auth_id_as_a_suspect(several_contacts: Kamailio) -> None:
    k = several_contacts
    res = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{k.udp_port}", "--auth-user", "1002",
        "--password-env", "PWBAD", env=ENV,
    )  # fmt: skip
    assert res.returncode == 1
    assert "wrong password, or the server does not know this user" in res.stdout
    assert "the auth ID '1002' differs from the user name '1001'" in res.stdout


def test_a_pbx_that_refuses_the_binding_query_says_how_to_run_the_binding_test(
    several_contacts: Kamailio,
) -> None:
    k = several_contacts
    k.clear()
    rc, r, _ = _probe(k, user=NO_QUERY)
    assert rc == 1 and r["verdict"] == "query-refused" and r["bindings"] is None
    assert "400 Missing Contact" in r["message"] and "--bind" in r["message"]
    rc, r, _ = _probe(k, "--bind", user=NO_QUERY)  # cannot list bindings: not without --force
    assert rc == 1 and r["verdict"] == "query-refused" and k.bindings(NO_QUERY) == []
    rc, r, stderr = _probe(k, "--bind", "--force", user=NO_QUERY)
    assert rc == 0 and r["ok"] and r["unregistered"] is True, r
    assert "refuses a binding query (400 Missing Contact): binding anyway" in stderr
    assert k.bindings(NO_QUERY) == []
