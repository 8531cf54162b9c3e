"""The component contract: one method per role, settings as a typed model.

A component kind is a class registered under the entry-point group ``implmon.components``. It
declares its role, a pydantic ``Settings`` model (extending :class:`ComponentSettings`; unknown
keys are errors) and implements the role's single method. Timing, deadlines, success metrics and
logging belong to the monitor, not the component.

>>> class Constant(Collector):
...     kind = "constant"
...     async def collect(self) -> list[Sample]:
...         return [Sample("implmon_system_health_ratio", {}, 1.0)]
>>> import asyncio
>>> c = Constant(Constant.Settings(kind="constant", name="c"))
>>> asyncio.run(c.collect())[0].value
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import Field

from implmon.credentials import StrictModel
from implmon.durations import Duration
from implmon.metrics import MetricSpec, Sample

__all__ = [
    "RUNBOOKS_URL",
    "AlertSink",
    "Analysis",
    "Analyzer",
    "Collector",
    "Component",
    "ComponentSettings",
    "Finding",
    "MonitoringType",
    "Processor",
    "Reporter",
    "Role",
    "SampleProvider",
    "Severity",
    "Snapshot",
]


#: The runbooks page; every alert and finding has an anchor there (its alertname, lowercased).
RUNBOOKS_URL = "https://github.com/implmon/implmon/blob/main/docs/runbooks.md"


class Role(StrEnum):
    """The seed's four component types; also the ``role`` of a pipeline component."""

    COLLECTOR = "collector"
    ANALYZER = "analyzer"
    PROCESSOR = "processor"
    REPORTER = "reporter"


class MonitoringType(StrEnum):
    COMPONENT = "component"
    SYSTEM = "system"
    QUALITY = "quality"
    PERFORMANCE = "performance"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class ComponentSettings(StrictModel):
    """Settings every component entry has; a kind's own ``Settings`` extends this."""

    kind: str
    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_.-]*$")
    enabled: bool = True
    # Collectors only: the deadline of one run. None means 80% of the monitor interval.
    timeout: Duration | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """An analyzer's conclusion about something being wrong (or noteworthy).

    ``key`` identifies the finding across cycles (same key, same alert); the alert stage sends
    it to Alertmanager as labels ``alertname``, ``severity``, ``monitoring_type`` plus ``labels``.
    """

    alertname: str
    severity: Severity
    monitoring_type: MonitoringType
    summary: str
    description: str
    labels: Mapping[str, str] = field(default_factory=dict)
    runbook: str = ""

    @property
    def runbook_url(self) -> str:
        """The finding's own runbook, or its alertname's anchor in ``docs/runbooks.md``."""
        return self.runbook or f"{RUNBOOKS_URL}#{self.alertname.lower()}"

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted({**self.labels, "alertname": self.alertname}.items()))


@dataclass(frozen=True, slots=True)
class Analysis:
    """What an analyzer returns: derived samples and findings."""

    samples: Sequence[Sample] = ()
    findings: Sequence[Finding] = ()


@dataclass(slots=True)
class Snapshot:
    """Everything one monitor cycle produced, as reporters see it."""

    timestamp: float
    samples: list[Sample]
    findings: list[Finding]
    # Per collector: (success, duration_seconds, last_success_timestamp, error message or "").
    collectors: dict[str, tuple[bool, float, float, str]] = field(default_factory=dict)


class Component:
    """Base of all component kinds. ``kind`` is the registry name; ``metrics`` lists families
    the kind defines beyond the built-in catalogue."""

    kind: ClassVar[str] = ""
    role: ClassVar[Role]
    Settings: ClassVar[type[ComponentSettings]] = ComponentSettings
    metrics: ClassVar[Sequence[MetricSpec]] = ()

    def __init__(self, settings: Any, *, base_dir: Path | None = None) -> None:
        self.settings = settings
        self.name: str = settings.name
        self.base_dir = base_dir or Path.cwd()

    async def start(self) -> None:
        """Acquire resources (sessions, files). Called once before the first cycle."""

    async def close(self) -> None:
        """Release resources. Called once when the pipeline is replaced or stops."""


class Collector(Component):
    role = Role.COLLECTOR
    #: Seconds the current run may take; set by the monitor before each ``collect()`` so a
    #: collector can fit its own timeouts inside it (a run past it is cancelled).
    deadline: float | None = None

    async def collect(self) -> Sequence[Sample]:
        raise NotImplementedError


class Processor(Component):
    role = Role.PROCESSOR

    def process(self, samples: list[Sample]) -> list[Sample]:
        raise NotImplementedError


class Analyzer(Component):
    role = Role.ANALYZER

    def analyze(self, samples: Sequence[Sample]) -> Analysis:
        raise NotImplementedError


class Reporter(Component):
    role = Role.REPORTER

    async def report(self, snapshot: Snapshot) -> None:
        raise NotImplementedError


class SampleProvider(Protocol):
    """Anything that adds samples to every cycle's snapshot (the alert stage's own figures, the
    event store's pipeline counters). Called once per cycle, on the event loop: keep it cheap."""

    def samples(self) -> Sequence[Sample]: ...


class AlertSink(SampleProvider, Protocol):
    """The alert stage: receives the active findings of every cycle (an empty list resolves all
    earlier ones). ``process`` must return quickly: delivery happens in the background."""

    async def process(self, findings: Sequence[Finding]) -> None: ...
