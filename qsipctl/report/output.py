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
    """
    if obj is None or type(obj) in _SCALARS:
        return obj
    if hasattr(type(obj), "__dataclass_fields__") and not isinstance(obj, type):
        import dataclasses  # already loaded: obj is a dataclass

        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)  # paths, secrets (masked), anything else


def dump_json(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def echo_json(obj: Any) -> None:
    sys.stdout.write(dump_json(obj))
    sys.stdout.flush()


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    from tabulate import tabulate

    return tabulate(list(rows), headers=list(headers), tablefmt="simple", disable_numparse=True)


def use_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ
