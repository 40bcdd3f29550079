import pytest
from hypothesis import given
from hypothesis import strategies as st

from qsipctl.site.ranges import MAX_HOSTS, RangeError, expand


def test_zero_padded_numeric_range():
    names = expand("core-[01:40].site-a")
    assert len(names) == 40
    assert names[0] == "core-01.site-a" and names[-1] == "core-40.site-a"


def test_alpha_and_step_and_product():
    assert expand("pager-[a:f]") == [f"pager-{c}" for c in "abcdef"]
    assert expand("x[0:10:5]") == ["x0", "x5", "x10"]
    assert expand("r[1:2]-[a:b]") == ["r1-a", "r1-b", "r2-a", "r2-b"]


@pytest.mark.parametrize(
    "name", ["c[5:1]", "c[01:100]", "c[a:5]", "c[1]", "c[1:2", "c1:2]", "c[1:9:0]", "c[A:c]"]
)
def test_bad_ranges(name):
    with pytest.raises(RangeError):
        expand(name)


def test_range_cap():
    with pytest.raises(RangeError, match=str(MAX_HOSTS)):
        expand("c[0:99999999]")


@given(st.text(alphabet="ab01:[]-.", max_size=30))
def test_expand_raises_only_range_error(name):
    try:
        out = expand(name)
    except RangeError:
        return
    assert out and all("[" not in n for n in out)


@given(st.integers(0, 500), st.integers(0, 500))
def test_numeric_count(a, b):
    lo, hi = min(a, b), max(a, b)
    assert len(expand(f"h[{lo}:{hi}]")) == hi - lo + 1
