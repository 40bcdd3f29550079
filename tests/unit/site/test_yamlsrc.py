"""Every YAML failure is one line with file:line:col, whatever PyYAML raised."""

from __future__ import annotations

import pytest

from qsipctl.errors import InvalidInput
from qsipctl.site.yamlsrc import load_yaml_text


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        ("all:\n  hosts:\n    c1\x00:\n", 3, 7, "character"),
        ("all:\n  x: \x07\n", 2, 6, "character"),
        ("all:\n  hosts:\n    c1: !!python/object:os.system echo\n", 3, 9, "python/object"),
        ("all:\n  hosts: [c1\n", 3, 1, "invalid YAML"),
        ("all: {a: !!binary 'not base64!'}\n", 1, 10, "invalid value"),
    ],
)
def test_yaml_errors_are_one_line_with_position(text, line, col, fragment):
    with pytest.raises(InvalidInput) as info:
        load_yaml_text(text, "x.yml")
    [diag] = info.value.diagnostics
    formatted = diag.format()
    assert "\n" not in formatted, formatted
    assert formatted.startswith(f"x.yml:{line}:{col}: "), formatted
    assert fragment in formatted, formatted


def test_a_spelling_repeated_quoted_and_plain_keeps_each_its_own_type():
    # the composer remembers a scalar's tag per spelling: quoting must still count
    text = 'a: [1, "1", 1, yes, "yes", ~, "~", 1.5, "1.5", 1.5, "yes", yes]\n'
    doc = load_yaml_text(text, "t.yml")
    assert doc.data["a"] == [1, "1", 1, True, "yes", None, "~", 1.5, "1.5", 1.5, "yes", True]
    assert [type(x) for x in doc.data["a"][:3]] == [int, str, int]
