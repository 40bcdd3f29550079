"""The ``options`` probe: is the registrar/proxy there, how fast, what does it support?

Any final answer proves the server is reachable on that transport and port,
even a 404 or 405; only a 5xx or no answer at all is a failure.
"""

from __future__ import annotations

import time

from qsipctl.net.errors import NetError
from qsipctl.probes.exchange import Dialogish, build_request, connect, host_port, transact
from qsipctl.probes.register import ProbeOutcome, fail_from_net, new_result, warn_unverified
from qsipctl.probes.result import status_line, verdict_for_status
from qsipctl.probes.target import ProbeTarget
from qsipctl.sip.errors import SipError


async def probe_options(target: ProbeTarget) -> ProbeOutcome:
    """Send one OPTIONS and report; never raises for network or server failures."""
    result = new_result("options", target)
    outcome = ProbeOutcome(result)
    try:
        tp, server = await connect(target)
    except NetError as exc:
        fail_from_net(result, exc)
        return outcome
    outcome.traces.append(tp.trace)
    result.transport, result.server = server.transport, host_port(server.host, server.port)
    warn_unverified(result, server.transport, target)
    result.local = host_port(*tp.local)
    uri = target.aor if target.user else target.request_uri
    try:
        req = build_request(
            tp, target, Dialogish.new(), "OPTIONS", uri, uri, [("Accept", "application/sdp")]
        )
        started = time.perf_counter()
        resp = await transact(tp, req, time.monotonic() + target.timeout)
        result.elapsed_ms = round((time.perf_counter() - started) * 1000.0, 2)
        result.status, result.reason = resp.status, resp.reason
        result.server_agent = resp.headers.get("Server") or resp.headers.get("User-Agent")
        result.allow = resp.headers.get_all("Allow")
        result.supported = resp.headers.get_all("Supported")
        if resp.status >= 500:
            result.fail(verdict_for_status(resp.status), status_line(resp.status, resp.reason))
        else:
            result.succeed(f"reachable ({status_line(resp.status, resp.reason)})")
    except NetError as exc:
        fail_from_net(result, exc)
    except SipError as exc:
        result.fail("transport", f"unusable answer from the server: {exc}")
    finally:
        tp.close()
    return outcome
