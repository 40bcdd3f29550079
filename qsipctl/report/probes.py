"""Probe results for people: the summary table, the ladders, the JSON envelope.

Here rather than in ``cli/``: ``probe``, ``diagnose`` and ``demo`` print the
same results, and a result is rendered the same wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qsipctl.addr import host_port
from qsipctl.probes.base import ProbeOutcome
from qsipctl.probes.result import ProbeResult
from qsipctl.report.ladder import render_ladder
from qsipctl.report.output import table

# the probe JSON's version: 2 since the binding-safe register probe (docs/diagnostics.md)
JSON_SCHEMA = 2
HEADERS = ["PROBE", "CORE/PHONE", "TARGET", "TRANSPORT", "SERVER", "RESULT", "MS", "DETAILS"]


def details(r: ProbeResult) -> str:
    """The DETAILS cell: the verdict's words, then what an engineer asks next."""
    if not r.ok:
        return r.message
    parts: list[str] = [r.message]
    if r.algorithm:
        parts.append(r.algorithm)
    if r.seen_as:
        parts.append(f"seen as {r.seen_as}" + (" (NAT between you and the PBX)" if r.nat else ""))
    if r.unregistered is False:
        parts.append("NOT unregistered")
    elif r.unregistered:
        parts.append("binding removed")
    if r.allow:
        parts.append("allow " + ",".join(r.allow))
    if r.supported:
        parts.append("supported " + ",".join(r.supported))
    if r.server_agent:
        parts.append(r.server_agent[:80])  # the peer's text: a line, not a page
    return "; ".join(parts)


def render_probe_table(outcomes: Sequence[ProbeOutcome]) -> str:
    rows = []
    for o in outcomes:
        r = o.result
        who = f"{r.core}/{r.softphone}" if r.core else "-"
        ms = f"{r.elapsed_ms:.1f}" if r.elapsed_ms is not None else "-"
        status = "ok" if r.ok else "FAILED"
        rows.append([r.probe, who, r.target, r.transport, r.server or "-", status, ms, details(r)])
    failed = sum(1 for o in outcomes if not o.result.ok)
    recap = f"{len(outcomes)} probe(s): {len(outcomes) - failed} ok, {failed} failed"
    return table(rows, HEADERS) + "\n\n" + recap


def render_ladders(outcomes: Sequence[ProbeOutcome]) -> str:
    """One ladder per conversation (server tried, or address that answered)."""
    out = []
    for o in outcomes:
        for tr in o.traces:
            title = f"{o.result.probe} {o.result.target}"
            remote = f"{tr.transport} {host_port(*tr.remote)}"
            out.append(render_ladder(f"you {host_port(*tr.local)}", remote, tr.messages, title))
    return "\n" + "\n".join(out)


def json_document(outcomes: Sequence[ProbeOutcome]) -> dict[str, Any]:
    """``{"results": [...], "summary": {...}}``: the shape scripts read (docs/diagnostics.md)."""
    results = [o.result for o in outcomes]
    failed = sum(1 for r in results if not r.ok)
    return {
        "schema": JSON_SCHEMA,
        "results": results,
        "summary": {"total": len(results), "ok": len(results) - failed, "failed": failed},
    }
