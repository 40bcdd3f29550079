"""``dump_json``: sorted, 2-space indented, UTF-8 as written, one trailing newline."""

import enum
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from qsipctl.report.output import dump_json, to_jsonable


class Colour(enum.Enum):
    RED = "red"


@dataclass
class Inner:
    zeta: int = 1
    alpha: tuple[str, ...] = ("ü", "a")


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    extra: dict[object, object] = field(default_factory=dict)
    colour: Colour = Colour.RED
    where: PurePosixPath = field(default_factory=lambda: PurePosixPath("/x"))


def test_dump_json_is_what_json_prints_sorted_whatever_the_order_given():
    value = Outer("é", extra={"b": 1, 10: [Inner()], 9: None, "a": {"y": 2, "x": 1.5}})
    expected = json.dumps(
        {
            "name": "é",
            "inner": {"zeta": 1, "alpha": ["ü", "a"]},
            "extra": {"b": 1, "10": [{"zeta": 1, "alpha": ["ü", "a"]}], "9": None,
                      "a": {"y": 2, "x": 1.5}},
            "colour": "red",
            "where": "/x",
        },
        indent=2,
        sort_keys=True,
        ensure_ascii=False,
    )  # fmt: skip
    assert dump_json(value) == expected + "\n"
    assert list(to_jsonable(value)) == sorted(to_jsonable(value))


def test_keys_equal_as_text_keep_the_last_value_as_before():
    assert to_jsonable({1: "int", "1": "str"}) == {"1": "str"}
    assert dump_json([{"b": 1, "a": 2}]) == '[\n  {\n    "a": 2,\n    "b": 1\n  }\n]\n'
