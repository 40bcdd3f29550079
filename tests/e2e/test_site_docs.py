"""The examples in the site documents run, and print what the documents show.

A `$ qsipctl ...` line in a ```sh block is run from the repository root; the
lines after it (up to the next `$ `) are its expected stderr+stdout, where a
line `...` stands for any lines and a trailing `...` for the rest of a line.
`$ echo $?` checks the previous exit code.  config-format.md's example
document must be byte for byte what `render` prints.
"""

from __future__ import annotations

import re
import shlex

import pytest

from tests.fixtures.common import REPO, run_cli

DOCS = REPO / "docs"
SITE_SECTIONS = ("validate", "inventory", "profiles", "render")


def _section(text: str, title: str) -> str:
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, title
    return match.group(1)


def _sh_blocks(text: str) -> list[list[str]]:
    return [b.splitlines() for b in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)]


def _sessions() -> list[tuple[str, str, list[str]]]:
    """(command, next command or '', expected lines) for every `$ qsipctl` line."""
    cli = (DOCS / "cli.md").read_text()
    out = []
    for title in SITE_SECTIONS:
        for block in _sh_blocks(_section(cli, title)):
            starts = [i for i, line in enumerate(block) if line.startswith("$ ")]
            for n, i in enumerate(starts):
                end = starts[n + 1] if n + 1 < len(starts) else len(block)
                follow = block[end][2:] if end < len(block) else ""
                expected = block[i + 1 : end]
                while expected and not expected[-1].strip():
                    expected.pop()
                if block[i].startswith("$ qsipctl "):
                    out.append((block[i][2:], follow, expected))
    return out


def _pattern(expected: list[str]) -> re.Pattern[str]:
    parts = []
    for line in expected:
        if line == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        elif line.endswith("..."):
            parts.append(re.escape(line[:-3]) + r"[^\n]*\n")
        else:
            parts.append(re.escape(line) + r"\n")
    return re.compile(
        "".join(parts) + r"(?:[^\n]*\n)*\Z" if expected[-1] == "..." else "".join(parts) + r"\Z"
    )


SESSIONS = _sessions()


def test_every_site_command_and_option_has_a_run_example():
    typed = " ".join(cmd for cmd, _, _ in SESSIONS)
    options = ("--limit", "-l", "--profiles-dir", "--no-secrets", "--show-secrets", "--sheet")
    for option in (*options, "--host"):
        assert re.search(rf" {option}\b", typed), option
    for command in SITE_SECTIONS:
        assert f"qsipctl {command} " in typed + " ", command
        assert any(
            c.startswith(f"qsipctl {command}") and "--format json" in c for c, _, _ in SESSIONS
        )


@pytest.mark.parametrize(("command", "follow", "expected"), SESSIONS, ids=[s[0] for s in SESSIONS])
def test_cli_md_example(command: str, follow: str, expected: list[str]):
    res = run_cli(*shlex.split(command)[1:], cwd=REPO)
    assert "Traceback" not in res.stderr
    if follow != "echo $?":  # else test_cli_md_exit_codes checks it
        assert res.returncode == 0, res.stderr
    assert expected, f"no output shown for {command}"
    output = res.stderr + res.stdout
    assert _pattern(expected).match(output), output


def test_cli_md_exit_codes():
    cli = (DOCS / "cli.md").read_text()
    for title in SITE_SECTIONS:
        for block in _sh_blocks(_section(cli, title)):
            for i, line in enumerate(block):
                if line == "$ echo $?":
                    command = block[max(j for j in range(i) if block[j].startswith("$ "))]
                    res = run_cli(*shlex.split(command[2:])[1:], cwd=REPO)
                    assert str(res.returncode) == block[i + 1].strip(), command


def _runnable(text: str) -> list[str]:
    lines = []
    for block in _sh_blocks(text):
        lines += [line for line in block if line.startswith("qsipctl ")]
    return lines


@pytest.mark.parametrize("doc", ["config-format.md", "profiles.md"])
def test_plain_command_lines_run(doc: str):
    commands = _runnable((DOCS / doc).read_text())
    assert commands
    for command in commands:
        res = run_cli(*shlex.split(command, comments=True)[1:], cwd=REPO)
        assert res.returncode == 0 and "Traceback" not in res.stderr, (command, res.stderr)
        assert res.stdout.strip()


def test_config_format_example_is_what_render_prints():
    doc = (DOCS / "config-format.md").read_text()
    example = re.search(r"^```json\n(.*?)^```", doc, re.S | re.M)
    assert example
    res = run_cli(
        "render", "inventory/example-site.yml", "--limit", "emergency.hq.example.net", cwd=REPO
    )
    assert res.returncode == 0, res.stderr
    header, _, document = res.stdout.partition("\n")
    assert header.startswith("# emergency.hq.example.net (Core 510i) -> ")
    assert document == example.group(1)


def test_yaml_examples_in_inventory_and_profiles_docs_validate(tmp_path):
    """The inventory.md site and the profiles.md profile, together, are a valid site."""
    blocks = {
        doc: re.findall(r"^```yaml\n(.*?)^```", (DOCS / doc).read_text(), re.S | re.M)
        for doc in ("inventory.md", "profiles.md")
    }
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "hq-freepbx.yml").write_text(blocks["profiles.md"][0])
    (tmp_path / "site.yml").write_text(blocks["inventory.md"][0])
    res = run_cli("validate", "site.yml", "--no-secrets", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "valid: 5 cores, 1 softphone" in res.stdout
