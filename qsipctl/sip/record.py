"""Deprecated: home-made dataclass substitutes, kept only until the merge.

Issue 7 retired the start-up budget they were written for; the SIP message
layer and errors.py use ``@dataclass(frozen=True, slots=True)`` now.  The
files still importing this one (net/, probes/, sip/transaction.py) are being
rewritten elsewhere; the lead deletes this module when they are merged.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self


class Record:
    """Equality and repr over ``_fields`` (in order), like a non-frozen dataclass.

    Defining ``__eq__`` without ``__hash__`` leaves instances unhashable, as a
    mutable dataclass is.  Names in ``_hidden`` stay out of the repr (secrets),
    names in ``_uncompared`` out of ``==`` and the hash (``field(compare=False)``).
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _hidden: ClassVar[tuple[str, ...]] = ()
    _uncompared: ClassVar[tuple[str, ...]] = ()

    def _astuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def _compared(self) -> tuple[Any, ...]:
        if not self._uncompared:
            return self._astuple()
        return tuple(getattr(self, n) for n in self._fields if n not in self._uncompared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Record)
        return self._compared() == other._compared()

    def __repr__(self) -> str:
        shown = (f"{n}={getattr(self, n)!r}" for n in self._fields if n not in self._hidden)
        return f"{type(self).__qualname__}({', '.join(shown)})"

    def __reduce__(self) -> tuple[Any, ...]:
        """copy/pickle through ``__init__`` (every subclass takes ``_fields`` in order)."""
        return self.__class__, self._astuple()


class FrozenRecord(Record):
    """A :class:`Record` that cannot be changed after ``__init__`` and so is hashable.

    ``__init__`` sets fields with :meth:`_set`; any later assignment raises
    AttributeError, as a frozen dataclass does.
    """

    __slots__ = ()

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of {type(self).__name__}")

    def __hash__(self) -> int:
        return hash(self._compared())

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (``dataclasses.replace``)."""
        values = {name: getattr(self, name) for name in self._fields}
        values.update(changes)
        return self.__class__(**values)
