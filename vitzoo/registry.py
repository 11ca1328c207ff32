"""Name -> entry registries: models, encoders and config classes here; training tasks
(:mod:`vitzoo.train.tasks.registry`) and self-supervised methods (:mod:`vitzoo.ssl.methods`) use the same class.

Registration happens once, at import of the module that defines the entry; a duplicate name is a
programming error and raises. Lookups of unknown names raise ``KeyError`` with close matches (or the error class
a registry is given, e.g. :class:`vitzoo.schema.ConfigError` for names read from a recipe).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from vitzoo.errors import UnknownNameError
from vitzoo.schema import did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to entries that refuses duplicates and suggests close names.

    Args:
        kind: what an entry is, for messages (``"model"``: "unknown model 'x'").
        error: the exception an unknown name raises (:class:`~vitzoo.errors.UnknownNameError`, a ``KeyError``, by
            default).
        prefix: put before the message of that error (e.g. ``"task.name: "``, the recipe key the name came from).
    """

    def __init__(self, kind: str, *, error: type[Exception] = UnknownNameError, prefix: str = "") -> None:
        self.kind = kind
        self.error = error
        self.prefix = prefix
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; raises ``ValueError`` if the name is taken."""
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def alias(self, name: str, target: str) -> None:
        """Make ``name`` resolve to the already registered ``target``."""
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self.resolve(target)
        self._aliases[name] = target

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda entry: self.add(name, entry)

    def resolve(self, name: str) -> str:
        """Canonical name for ``name`` (follows aliases); raises :attr:`error` (``KeyError``) with suggestions."""
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = [*self._entries, *self._aliases]
        hint = did_you_mean(name, known)
        if hint.startswith(" (known") and len(known) > 30:
            hint = f" (see vitzoo.list_models() for the {len(known)} names)"
        raise self.error(f"{self.prefix}unknown {self.kind} {name!r}{hint}")

    def get(self, name: str) -> T:
        """The entry registered as ``name`` (or the target of an alias)."""
        return self._entries[self.resolve(name)]

    def names(self, pattern: str = "*", *, include_aliases: bool = False) -> list[str]:
        """Sorted names matching the glob ``pattern``."""
        pool = [*self._entries, *(self._aliases if include_aliases else ())]
        return sorted(n for n in pool if fnmatch.fnmatchcase(n, pattern))

    def aliases(self) -> dict[str, str]:
        """A copy of the alias table (alias -> canonical name)."""
        return dict(self._aliases)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def copy(self) -> Registry[T]:
        """An independent registry with the same entries and aliases (e.g. to register entries for one test)."""
        other: Registry[T] = Registry(self.kind, error=self.error, prefix=self.prefix)
        other._entries, other._aliases = dict(self._entries), dict(self._aliases)
        return other

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


# Every model name maps to a zero-argument function returning a fresh config; every encoder name maps
# to an encoder class; every config class name maps to the config class (read back by ``vitzoo.config.from_json``)
# and to the model class it builds (``FAMILIES``). All are filled when ``vitzoo`` is imported.
MODELS: Registry[Callable] = Registry("model")
ENCODERS: Registry[type] = Registry("encoder")
CONFIGS: Registry[type] = Registry("config class")
FAMILIES: Registry[type] = Registry("model family")
REFERENCES: Registry = Registry("benchmark reference")  # name -> vitzoo.models.reference.Reference


def family(config_cls: type) -> Callable[[T], T]:
    """Class decorator: the decorated model class is built for configs of class ``config_cls``."""
    return FAMILIES.register(config_cls.__name__)
