"""Rendering results for people (tables) and for scripts (stable JSON).

Results are plain data (dataclasses / dicts); every command renders through
these two functions so the conventions hold everywhere: JSON is sorted,
indented, has no decoration and ends with a newline; tables use tabulate's
``simple`` style and honour ``NO_COLOR``.
"""

from __future__ import annotations

import enum
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

FORMATS = ("table", "json")
_SCALARS = frozenset({str, int, float, bool})  # exactly these types: not enums, not secrets


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, enums, tuples and paths into JSON-ready values.

    Paths and anything else render as ``str(obj)``; secrets as their mask
    because ``str(secret)`` is masked.  Plain scalars are most of a result
    document (a 1,000-phone diagnose has ~40,000), so they are let through first.
    Every dict comes out in key order, as :func:`dump_json` prints it.
    """
    if obj is None or type(obj) in _SCALARS:
        return obj
    names = _field_names(type(obj))
    if names is not None and not isinstance(obj, type):
        return {name: to_jsonable(getattr(obj, name)) for name in names}
    if isinstance(obj, dict):
        return dict(sorted({str(k): to_jsonable(v) for k, v in obj.items()}.items()))
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)  # paths, secrets (masked), anything else


def _field_names(cls: type) -> tuple[str, ...] | None:
    """A dataclass's field names in key order, worked out once per class (1,000
    results are 1,000 of the same); None for a class that is not a dataclass."""
    if cls not in _NAMES:
        if hasattr(cls, "__dataclass_fields__"):
            import dataclasses  # already loaded: cls is a dataclass

            _NAMES[cls] = tuple(sorted(f.name for f in dataclasses.fields(cls)))
        else:
            _NAMES[cls] = None
    return _NAMES[cls]


_NAMES: dict[type, tuple[str, ...] | None] = {}


def dump_json(obj: Any) -> str:
    """Sorted (by :func:`to_jsonable`: sorting again cost ~10 % of the dump), indented JSON."""
    return json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n"


def echo_json(obj: Any) -> None:
    sys.stdout.write(dump_json(obj))
    sys.stdout.flush()


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    from tabulate import tabulate

    return tabulate(list(rows), headers=list(headers), tablefmt="simple", disable_numparse=True)


def use_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ
