"""Ordered, case-insensitive header/URI parameters that serialise back exactly as parsed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ucma.signaling.sip.grammar import unquote


class Parameters:
    """Immutable ``;name=value`` list.

    Values are stored raw (quoted values keep their quotes) so serialisation is exact; a flag
    parameter (no ``=``) has the raw value ``""``, which no valued parameter can have.
    :meth:`get` returns the unquoted value, ``""`` for a flag parameter, ``None`` if absent.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple(items)

    @property
    def items(self) -> tuple[tuple[str, str], ...]:
        """The raw ``(name, value)`` pairs in order."""
        return self._items

    def get(self, name: str, default: str | None = None) -> str | None:
        """Unquoted value of the first parameter called ``name`` (case-insensitive)."""
        lname = name.lower()
        for key, value in self._items:
            if key.lower() == lname:
                return unquote(value) if value else value
        return default

    def get_raw(self, name: str) -> str | None:
        """The value as it appeared on the wire (quotes kept); ``""`` for a flag parameter."""
        lname = name.lower()
        for key, value in self._items:
            if key.lower() == lname:
                return value
        return None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lname = name.lower()
        return any(key.lower() == lname for key, _ in self._items)

    def with_param(self, name: str, value: str = "") -> Parameters:
        """A copy with ``name`` set to raw ``value`` (replacing an existing one in place)."""
        lname = name.lower()
        out = []
        replaced = False
        for key, old in self._items:
            if key.lower() == lname:
                if not replaced:
                    out.append((name, value))
                    replaced = True
            else:
                out.append((key, old))
        if not replaced:
            out.append((name, value))
        return Parameters(out)

    def without(self, name: str) -> Parameters:
        """A copy with every parameter called ``name`` removed."""
        lname = name.lower()
        return Parameters((k, v) for k, v in self._items if k.lower() != lname)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __str__(self) -> str:
        return "".join(f";{k}={v}" if v else f";{k}" for k, v in self._items)

    def __repr__(self) -> str:
        return f"Parameters({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Parameters):
            return NotImplemented
        return [(k.lower(), v) for k, v in self._items] == [(k.lower(), v) for k, v in other._items]

    def __hash__(self) -> int:
        return hash(tuple((k.lower(), v) for k, v in self._items))


EMPTY_PARAMETERS = Parameters()
