"""200 accounts registered at once against one Kamailio, then all unregistered."""

from __future__ import annotations

import gc
from collections import Counter

import pytest

from qsipctl.net.transport import TlsSettings
from qsipctl.probes.register_flow import BIND
from qsipctl.probes.runner import run_probes
from qsipctl.probes.target import adhoc_target
from qsipctl.site.secrets import Secret
from tests.fixtures.kamailio import Kamailio

pytestmark = pytest.mark.integration

USERS = [str(2000 + i) for i in range(200)]  # defined by the kamailio_session fixture


def _jobs(k: Kamailio, transport: str) -> list:
    return [
        (
            "register",
            adhoc_target(
                f"sip:{u}@127.0.0.1:{k.port(transport)}",
                transport=transport,
                password=Secret.parse(f"pw-{u}"),
                tls=TlsSettings(str(k.ca.ca_file)),
                timeout=10,
            ),
        )
        for u in USERS
    ]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_200_accounts_at_once(kamailio: Kamailio, transport: str) -> None:
    outcomes = run_probes(_jobs(kamailio, transport), concurrency=200, keep_registered=True)
    failed = [o.result.message for o in outcomes if not o.result.ok]
    assert failed == []
    assert [o.result.target for o in outcomes] == [f"sip:{u}@127.0.0.1" for u in USERS]
    assert kamailio.registered_users() == set(USERS)
    # and every probe used its own connection/socket: 200 distinct local addresses
    assert len({o.result.local for o in outcomes}) == 200


def test_200_accounts_unregister_cleanly(kamailio: Kamailio) -> None:
    finished: list[str] = []
    outcomes = run_probes(
        _jobs(kamailio, "udp"),
        concurrency=50,
        on_done=lambda i, o: finished.append(o.result.target),
        policy=BIND,
    )
    assert all(o.result.ok and o.result.unregistered for o in outcomes)
    assert sorted(finished) == sorted(o.result.target for o in outcomes)  # progress saw each
    assert kamailio.registered_users() == set()


def test_a_probe_run_leaves_no_reference_cycle(kamailio: Kamailio) -> None:
    """The premise of cli.common.short_lived: what a probe run frees, refcounting frees."""
    jobs = _jobs(kamailio, "udp")
    run_probes(jobs[:5], policy=BIND)  # first use: lazily built types and caches
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        outcomes = run_probes(jobs, concurrency=100, policy=BIND)
        found = gc.collect()
        kinds = Counter(type(o).__name__ for o in gc.garbage).most_common(8)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert all(o.result.ok for o in outcomes)
    assert found == 0, f"reference cycles left by 200 probes: {kinds}"
