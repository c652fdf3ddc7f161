"""Log keys: which ``/logs/<key>`` a run lands under, and how that key is written in a path.

The first run of a name is keyed by the name and later ones ``name:2``, ``name:3``, ... as
in LangChain; unlike LangChain, a key is never handed out twice (runs named ``x``, ``x``,
``x:2`` get ``x``, ``x:2`` and ``x:2:2``, where LangChain overwrites the second with the
third). Keys are escaped per RFC 6901 when they go into a JSON Pointer, so a run named
``a/b`` lands under the state key ``a/b``.

Example:
    >>> keys = KeyAllocator()
    >>> [keys.allocate(n) for n in ["x", "x", "x:2"]]
    ['x', 'x:2', 'x:2:2']
    >>> escape_key("a/b~c")
    'a~1b~0c'
"""

from __future__ import annotations

from ._values import escape_key

__all__ = ["KeyAllocator", "escape_key"]


class KeyAllocator:
    """Hands out unique log keys for run names; one allocator per log."""

    __slots__ = ("_counts", "_used")

    def __init__(self) -> None:
        """Create an allocator that has handed out nothing."""
        self._counts: dict[str, int] = {}
        self._used: set[str] = set()

    def __contains__(self, key: object) -> bool:
        """Return whether ``key`` has been handed out."""
        return key in self._used

    def allocate(self, name: str) -> str:
        """Return a key for a new run named ``name`` that no earlier run holds.

        Args:
            name: The run's name.

        Returns:
            ``name`` for its first run, else ``name:N`` with the smallest ``N`` above the
            last one handed out for this name that no run holds yet.
        """
        count = self._counts.get(name, 0) + 1
        key = name if count == 1 else f"{name}:{count}"
        while key in self._used:
            count += 1
            key = f"{name}:{count}"
        self._counts[name] = count
        self._used.add(key)
        return key
