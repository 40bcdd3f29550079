"""The ``options`` probe: is the registrar/proxy there, how fast, what does it support?

Any final answer proves the server is reachable on that transport and port,
even a 404 or 405; only a 5xx or no answer at all is a failure.
"""

from __future__ import annotations

import time

from qsipctl.net.transport import SipTransport
from qsipctl.probes.exchange import Dialogish, build_request, transact
from qsipctl.probes.register import ProbeOutcome, probe_servers
from qsipctl.probes.result import ProbeResult, status_line, verdict_for_status
from qsipctl.probes.target import ProbeTarget


async def probe_options(target: ProbeTarget) -> ProbeOutcome:
    """Send one OPTIONS (per server tried) and report; never raises for network failures."""

    async def attempt(tp: SipTransport, result: ProbeResult) -> None:
        await _options(tp, target, result)

    return await probe_servers("options", target, attempt)


async def _options(tp: SipTransport, target: ProbeTarget, result: ProbeResult) -> None:
    uri = target.aor if target.user else target.request_uri
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
