"""The README's dependency arrows, checked against the code's imports.

README.md ("How it is built") draws which package may import which; this
reads every ``import qsipctl.X`` in the package and fails on an arrow the
README does not draw, so the picture cannot drift from the code again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import qsipctl

PACKAGE = Path(qsipctl.__file__).parent
LEAVES = {"addr", "errors", "__version__"}  # any layer may use them
TOP = {"__main__", "cli"}  # the commands: they may import any package
# what each package may import besides the leaves (the README's arrows)
ALLOWED = {
    "report": {"probes", "rollout"},
    "nat": {"probes", "net", "report", "responder", "stun"},
    "probes": {"media", "net", "sdp", "sip", "site", "stun"},
    "lab": {"net", "sip", "site"},
    "qrc": {"site"},
    "media": {"net", "rtp", "sdp", "stun"},
    "rollout": {"site"},
    "net": {"sip", "stun"},
    "responder": {"stun"},
}


def _imports(path: Path) -> set[str]:
    """The qsipctl packages ``path`` imports (first component after ``qsipctl.``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = (
                [f"qsipctl.{a.name}" for a in node.names]
                if node.module == "qsipctl"
                else [node.module]
            )
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n.split(".")[1] for n in names if n.startswith("qsipctl.")}
    return found


def _package_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def test_every_import_follows_an_arrow_of_the_readme() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _package_of(path)
        if own in TOP:
            continue
        for used in _imports(path) - LEAVES - {own}:
            if used not in ALLOWED.get(own, set()):
                wrong.append(f"{path.relative_to(PACKAGE)} imports qsipctl.{used}")
    assert not wrong, "imports the README does not draw:\n" + "\n".join(wrong)


def test_the_arrows_have_no_cycle() -> None:
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in ALLOWED.get(start, set()) - seen:
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    assert not [p for p in ALLOWED if reaches(p, p, set())]


def test_the_readme_draws_these_arrows() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    for package, allowed in ALLOWED.items():
        line = f"{package} -> {', '.join(sorted(allowed))}"
        assert line in readme, f"README.md lacks the arrow line {line!r}"
