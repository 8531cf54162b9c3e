"""The ComponentRegistry: component kinds by name, from the ``implmon.components`` entry points.

Built-in kinds are registered through the same entry-point group as third-party plugins, so a
package that declares

.. code-block:: toml

    [project.entry-points."implmon.components"]
    my_collector = "my_pkg.collector:MyCollector"

adds a collector exactly as a built-in does.

>>> registry = ComponentRegistry.default()
>>> registry.get("http_probe", Role.COLLECTOR).__name__
'HttpProbeCollector'
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from implmon.component import Component, Role

__all__ = ["ENTRY_POINT_GROUP", "ComponentRegistry", "UnknownKindError"]

ENTRY_POINT_GROUP = "implmon.components"
log = logging.getLogger(__name__)


class UnknownKindError(LookupError):
    """A kind that is not registered, or registered for another role; says what is known."""


class ComponentRegistry:
    """Component kinds by name. Build one with :meth:`default` (entry points) or by hand."""

    _default: ComponentRegistry | None = None

    def __init__(self) -> None:
        self._kinds: dict[str, type[Component]] = {}
        # Entry points that failed to load: name -> reason. Shown when such a kind is asked for.
        self.broken: dict[str, str] = {}

    @classmethod
    def default(cls) -> ComponentRegistry:
        """The registry of every installed entry point (loaded once per process)."""
        if cls._default is None:
            cls._default = cls.from_entry_points()
        return cls._default

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> ComponentRegistry:
        registry = cls()
        # Two installed distributions claiming one kind name: which would win depends on
        # sys.path order, so neither does (the same entry point found twice is harmless).
        values: dict[str, set[str]] = {}
        for ep in entry_points(group=group):
            values.setdefault(ep.name, set()).add(ep.value)
        for name, found in values.items():
            if len(found) > 1:
                registry.broken[name] = f"registered more than once: {', '.join(sorted(found))}"
                log.warning("component kind %s is %s", name, registry.broken[name])
        for ep in entry_points(group=group):
            if ep.name in registry.broken:
                continue
            try:
                kind = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
                registry.broken[ep.name] = f"{type(exc).__name__}: {exc}"
                log.warning("component kind %s (%s) failed to load: %s", ep.name, ep.value, exc)
                continue
            registry.register(ep.name, kind)
        return registry

    def register(self, name: str, kind: type[Component]) -> None:
        if not (isinstance(kind, type) and issubclass(kind, Component)):
            self.broken[name] = "not a subclass of implmon.component.Component"
            log.warning("component kind %s is not usable: %s", name, self.broken[name])
            return
        self._kinds[name] = kind

    def kinds(self, role: Role | None = None) -> dict[str, type[Component]]:
        return {n: k for n, k in sorted(self._kinds.items()) if role is None or k.role is role}

    def get(self, name: str, role: Role) -> type[Component]:
        kind = self._kinds.get(name)
        if kind is not None and kind.role is role:
            return kind
        known = ", ".join(self.kinds(role)) or "none"
        if name in self.broken:
            raise UnknownKindError(f"kind {name!r} failed to load ({self.broken[name]})")
        if kind is not None:
            raise UnknownKindError(
                f"kind {name!r} is {_article(kind.role)} {kind.role.value}, "
                f"not {_article(role)} {role.value}; "
                f"known {role.value}s: {known}"
            )
        raise UnknownKindError(f"unknown {role.value} kind {name!r}; known: {known}")


def _article(role: Role) -> str:
    return "an" if role.value[0] in "aeiou" else "a"
