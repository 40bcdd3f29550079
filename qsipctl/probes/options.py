"""The ``options`` probe: is the registrar/proxy there, how fast, what does it support?

Any final answer proves the server is reachable on that transport and port,
even a 404 or 405; only a 5xx or no answer at all is a failure.
"""

from __future__ import annotations

import time

from qsipctl.probes.base import Conversation, ProbeOutcome, elapsed_ms, probe_servers
from qsipctl.probes.result import ProbeResult, status_line, verdict_for_status
from qsipctl.probes.target import ProbeTarget


async def probe_options(target: ProbeTarget, keep_registered: bool = False) -> ProbeOutcome:
    """Send one OPTIONS (per server tried) and report; never raises for network failures."""
    return await probe_servers("options", target, _options)


async def _options(conv: Conversation, result: ProbeResult) -> None:
    target = conv.target
    uri = target.aor if target.user else target.request_uri
    req = conv.build("OPTIONS", uri, uri, [("Accept", "application/sdp")])
    started = time.perf_counter()
    resp = (await conv.send(req)).response
    result.elapsed_ms = elapsed_ms(started)
    result.status, result.reason = resp.status, resp.reason
    result.server_agent = resp.headers.get("Server") or resp.headers.get("User-Agent")
    result.allow = resp.headers.get_all("Allow")
    result.supported = resp.headers.get_all("Supported")
    if resp.status >= 500:
        result.fail(verdict_for_status(resp.status), status_line(resp.status, resp.reason))
    else:
        result.succeed(f"reachable ({status_line(resp.status, resp.reason)})")
