"""ComponentFactory: register → create → validate → monitor, as the seed describes it.

Each step is a child span of ``create_component`` (OpenTelemetry API only: without an SDK
the spans cost nothing). Every component created, or refused, is counted in
``implmon_components_created_total{type,outcome}`` and listed for component monitoring.

>>> import asyncio
>>> from implmon.component import Role
>>> factory = ComponentFactory()
>>> spec = {"kind": "health", "name": "health"}
>>> component = asyncio.run(factory.create_component(spec, Role.ANALYZER))
>>> type(component).__name__
'HealthAnalyzer'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opentelemetry import trace
from pydantic import ValidationError

from implmon.component import (
    Analyzer,
    Collector,
    Component,
    ComponentSettings,
    Processor,
    Reporter,
    Role,
)
from implmon.metrics import CATALOGUE, Sample, define
from implmon.registry import ComponentRegistry

__all__ = ["TRACER_NAME", "ComponentCreationError", "ComponentFactory"]

#: Name of the tracer every implmon SDK span comes from.
TRACER_NAME = "implmon"

# Per role: the base class a kind extends and the one method it must implement.
_CONTRACT: dict[Role, tuple[type[Component], str]] = {
    Role.COLLECTOR: (Collector, "collect"),
    Role.PROCESSOR: (Processor, "process"),
    Role.ANALYZER: (Analyzer, "analyze"),
    Role.REPORTER: (Reporter, "report"),
}


class ComponentCreationError(Exception):
    """A component spec could not become a working component; says which and why."""


class ComponentFactory:
    """Creates pipeline components from their specs (config entries or plain mappings)."""

    def __init__(
        self,
        registry: ComponentRegistry | None = None,
        base_dir: Path | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.registry = registry or ComponentRegistry.default()
        self.base_dir = base_dir
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self.created: Counter[tuple[str, str]] = Counter()

    async def create_component(
        self, spec: ComponentSettings | Mapping[str, Any], role: Role
    ) -> Component:
        """Register the spec's kind, create the component, validate it, and monitor it."""
        kind = spec.kind if isinstance(spec, ComponentSettings) else str(spec.get("kind", ""))
        name = spec.name if isinstance(spec, ComponentSettings) else str(spec.get("name", ""))
        attributes = {
            "implmon.component.type": role.value,
            "implmon.component.kind": kind,
            "implmon.component.name": name,
        }
        with self._tracer.start_as_current_span("create_component", attributes=attributes) as span:
            try:
                with self._tracer.start_as_current_span("register_component"):
                    cls = self.registry.get(kind, role)
                    settings = (
                        spec
                        if isinstance(spec, ComponentSettings)
                        else cls.Settings.model_validate(
                            dict(spec), context={"base_dir": self.base_dir}
                        )
                    )
                with self._tracer.start_as_current_span("create"):
                    component = cls(settings, base_dir=self.base_dir)
                with self._tracer.start_as_current_span("validate_component"):
                    self._validate(component, role)
            except (
                LookupError,
                ValidationError,
                ComponentCreationError,
                TypeError,
                ValueError,
            ) as exc:
                self.created[(role.value, "failure")] += 1
                span.set_attribute("implmon.outcome", "failure")
                raise ComponentCreationError(f"{role.value} {name!r} ({kind}): {exc}") from exc
            with self._tracer.start_as_current_span("monitor_component"):
                self.created[(role.value, "success")] += 1
                span.set_attribute("implmon.outcome", "success")
            return component

    @staticmethod
    def _validate(component: Component, role: Role) -> None:
        base, method = _CONTRACT[role]
        if not isinstance(component, base):
            raise ComponentCreationError(f"is not a {base.__name__}")
        if getattr(type(component), method) is getattr(base, method):
            raise ComponentCreationError(f"does not implement {method}()")
        for spec in component.metrics:
            if CATALOGUE.get(spec.name, spec) != spec:
                raise ComponentCreationError(f"redefines metric {spec.name}")
            define(spec.name, spec.type, spec.help, spec.labels, spec.buckets)

    def samples(self) -> list[Sample]:
        return [
            Sample("implmon_components_created_total", {"type": t, "outcome": o}, float(n))
            for (t, o), n in sorted(self.created.items())
        ]
