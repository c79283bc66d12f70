"""Named registries for everything a config or the command line can name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ganforge.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (classes or functions). Unknown names raise a UserError listing known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # what the entries are, used in messages: "net", "dataset", ...
        self._entries: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        """Return a decorator that registers its argument under `name`."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            doc = help or (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
            self._help[name] = doc if isinstance(doc, str) else (doc[0] if doc else "")
            return obj

        return add

    def get(self, name: str, field: str | None = None) -> T:
        """Return the entry called `name`; `field` names the config key or flag for the error message."""
        if name not in self._entries:
            where = f"{field}: " if field else ""
            raise UserError(f"{where}unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self, name: str) -> str:
        return self._help.get(name, "")

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def name_of(registry: Registry[T], obj: T) -> str:
    """Return the name under which `obj` is registered (for saving what to rebuild)."""
    for name in registry.names():
        if registry.get(name) is obj:
            return name
    raise KeyError(f"{obj!r} is not in the {registry.kind} registry")
