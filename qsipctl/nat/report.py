"""Findings as data, and their table/JSON rendering.

Every finding carries the addresses it rests on (``evidence``) and exactly
one recommendation, so the report can be acted on without reading RFCs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["ok", "info", "warning", "problem"]

SCOPE = (
    "These results describe the NAT and firewall between THIS machine ({local}) and the "
    "servers tested. Run qsipctl from the cores' own network (same subnet/VLAN as their "
    "SIP interface) to learn about theirs."
)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # stable code for scripts, e.g. "stun.mapping"
    severity: Severity
    summary: str  # plain words, with the consequence for a Q-SYS core
    evidence: dict[str, Any]
    recommendation: str


@dataclass(slots=True)
class NatReport:
    local_ip: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def scope(self) -> str:
        return SCOPE.format(local=self.local_ip)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "problem" for f in self.findings)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "local_ip": self.local_ip,
            "ok": self.ok,
            "findings": self.findings,
        }


def _evidence_text(evidence: dict[str, Any]) -> str:
    parts = []
    for key, value in evidence.items():
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return "; ".join(parts)


def render_table(report: NatReport) -> str:
    from qsipctl.report.output import table

    rows = [
        [f.check, f.severity.upper() if f.severity == "problem" else f.severity, f.summary]
        for f in report.findings
    ]
    out = [report.scope, "", table(rows, ["CHECK", "RESULT", "FINDING"]), ""]
    for i, f in enumerate(report.findings, 1):
        out.append(f"{i}. {f.check}: {f.summary}")
        out.append(f"   evidence: {_evidence_text(f.evidence)}")
        out.append(f"   do: {f.recommendation}")
    problems = sum(1 for f in report.findings if f.severity == "problem")
    warnings = sum(1 for f in report.findings if f.severity == "warning")
    out.append("")
    out.append(f"{len(report.findings)} finding(s): {problems} problem(s), {warnings} warning(s)")
    return "\n".join(out)
