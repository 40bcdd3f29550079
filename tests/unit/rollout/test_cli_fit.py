"""Lines and tables of provision/history/drift fit 100 columns unless --wide."""

from __future__ import annotations

from qsipctl.report.rollout import WIDTH, fit_table, shorten_paths


def test_long_paths_keep_their_last_two_parts() -> None:
    long = "/tmp/pytest-of-root/pytest-12/test_something_long0/sshlab/core000/core/softphone.json"
    assert shorten_paths(f"created {long}, backup x") == "created .../core/softphone.json, backup x"
    assert shorten_paths("created /var/lib/qsipctl/softphone.json") == (
        "created /var/lib/qsipctl/softphone.json"
    )


def test_tables_fit_and_wide_keeps_everything() -> None:
    rows = [
        [
            "core-with-a-rather-long-name-" * 2,
            "unreachable",
            "local:/very/long/" + "d" * 60,
            "r" * 300,
        ]
    ]
    headers = ["core", "status", "host", "reason"]
    text = fit_table([list(r) for r in rows], headers, wide=False)
    assert max(len(line) for line in text.splitlines()) <= WIDTH, text
    assert "unreachable" in text  # the status column is never clipped here
    wide = fit_table([list(r) for r in rows], headers, wide=True)
    assert "r" * 300 in wide and "d" * 60 in wide
