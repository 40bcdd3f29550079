from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsipctl.errors import UsageError
from qsipctl.site.load import load_site
from qsipctl.site.patterns import select, split_pattern

REPO = Path(__file__).resolve().parents[3]
SITE = load_site(REPO / "inventory" / "example-site.yml")
NAMES = [c.name for c in SITE.cores]


def names(pattern):
    return [c.name for c in select(SITE, pattern)]


def test_all_and_none():
    assert names(None) == NAMES
    assert names("all") == NAMES
    assert names("*") == NAMES


def test_group_union_intersection_exclusion():
    hq = set(SITE.groups["hq"])
    assert set(names("hq")) == hq
    assert set(names("lobby:rooms")) == set(SITE.groups["lobby"]) | set(SITE.groups["rooms"])
    assert set(names("hq:&conference")) == set(SITE.groups["conference"])
    assert set(names("hq:!conference")) == hq - set(SITE.groups["conference"])
    assert set(names("hq,!paging")) == hq - set(SITE.groups["paging"])


def test_unions_apply_before_exclusions_whatever_the_order():
    assert names("!paging:hq") == names("hq:!paging")


def test_glob_regex_and_host():
    assert names("room-0[12]*") == ["room-01.branch.example.net", "room-02.branch.example.net"]
    assert names("~room-0[34]") == ["room-03.branch.example.net", "room-04.branch.example.net"]
    assert names("lobby-a.hq.example.net") == ["lobby-a.hq.example.net"]
    assert set(names("lob*")) == set(SITE.groups["lobby"])  # glob over group names too


def test_group_subscripts():
    rooms = list(SITE.groups["rooms"])
    assert names("rooms[0]") == rooms[:1]
    assert names("rooms[1:2]") == rooms[1:3]
    with pytest.raises(UsageError, match="out of range"):
        select(SITE, "rooms[9]")


def test_typos_are_errors_with_hint():
    with pytest.raises(UsageError, match="did you mean 'lobby'"):
        select(SITE, "loby")
    with pytest.raises(UsageError, match="matches no hosts"):
        select(SITE, "hq:&branch")
    with pytest.raises(UsageError, match="invalid regular expression"):
        select(SITE, "~(")


def test_split_keeps_brackets():
    assert split_pattern("rooms[0:1]:hq") == ["rooms[0:1]", "hq"]
    assert split_pattern("a,b:c") == ["a", "b:c"]


TERMS = [*SITE.groups, *NAMES[:4], "lob*", "~room-0[12]"]


def _term_set(term):
    if term in SITE.groups:
        return set(SITE.groups[term])
    return set(names(term))


@given(
    st.lists(st.sampled_from(TERMS), min_size=1, max_size=3),
    st.lists(st.sampled_from(TERMS), max_size=2),
    st.lists(st.sampled_from(TERMS), max_size=2),
)
@settings(max_examples=150, deadline=None)
def test_pattern_algebra_matches_set_model(unions, inters, excls):
    expected = set().union(*(_term_set(t) for t in unions))
    for t in inters:
        expected &= _term_set(t)
    for t in excls:
        expected -= _term_set(t)
    pattern = ",".join([*unions, *("&" + t for t in inters), *("!" + t for t in excls)])
    if not expected:
        with pytest.raises(UsageError):
            select(SITE, pattern)
    else:
        got = names(pattern)
        assert set(got) == expected
        assert got == [n for n in NAMES if n in expected]  # inventory order


@given(st.text(alphabet="hqlobyrm*?[]~!&:,.-0123^$()|+{}\\ ", max_size=40))
@settings(max_examples=400, deadline=None)
def test_any_pattern_raises_only_usage_error(pattern):
    try:
        got = select(SITE, pattern)
    except UsageError as exc:
        assert str(exc)
        return
    assert got and all(c in SITE.cores for c in got)
