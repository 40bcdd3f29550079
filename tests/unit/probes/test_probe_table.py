"""The fast probe table is byte-identical to report.output.table (tabulate)."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from qsipctl.cli.diag_cmds import probe_table
from qsipctl.report.output import table

cell = st.text(alphabet=string.printable, max_size=12)


@given(
    st.integers(1, 5).flatmap(
        lambda n: st.tuples(
            st.lists(cell, min_size=n, max_size=n),
            st.lists(st.lists(cell, min_size=n, max_size=n), max_size=6),
        )
    )
)
def test_same_as_tabulate(data: tuple[list[str], list[list[str]]]) -> None:
    headers, rows = data
    assert probe_table(rows, headers) == table(rows, headers)


def test_non_ascii_goes_through_tabulate() -> None:
    rows = [["Lobby Café", "ok"], ["会议室", "ok"]]
    assert probe_table(rows, ["PHONE", "RESULT"]) == table(rows, ["PHONE", "RESULT"])


plain = st.text(
    alphabet=string.ascii_letters + string.digits + string.punctuation + " ", max_size=12
)


@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.lists(plain.map(str.strip), min_size=n, max_size=n),
            st.lists(st.lists(plain.map(str.strip), min_size=n, max_size=n), max_size=8),
        )
    )
)
def test_fast_path_same_as_tabulate(data: tuple[list[str], list[list[str]]]) -> None:
    headers, rows = data  # all plain: the fast path renders these
    assert probe_table(rows, headers) == table(rows, headers)
