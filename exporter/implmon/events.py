"""Typed pipeline events: builds, deployments, validations and incidents.

One vocabulary shared by the SDK (the builder, deployer and validator emit these), the ingest
API (``POST /api/v1/events`` parses them) and the CLI (``implmon event ...`` sends them). Every
event has a caller-chosen ``id``: sending the same id twice records the event once.

>>> event = parse_event(b'{"kind": "deployment", "id": "ci-42", "environment": "production",'
...                     b' "outcome": "success", "duration_seconds": 42.5}')
>>> event.kind, event.environment, event.outcome
('deployment', <Environment.PRODUCTION: 'production'>, <Outcome.SUCCESS: 'success'>)
>>> parse_event(b'{"kind": "build", "id": "x"}')
Traceback (most recent call last):
...
implmon.events.EventError: build_type: Field required; outcome: Field required
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

__all__ = [
    "BuildEvent",
    "BuildType",
    "DeploymentEvent",
    "Environment",
    "Event",
    "EventError",
    "EventRecorder",
    "IncidentEvent",
    "IncidentStatus",
    "Outcome",
    "ValidationEvent",
    "ValidationOutcome",
    "ValidationType",
    "dump_event",
    "event_json_schema",
    "parse_event",
]


class BuildType(StrEnum):
    """The seed's four build types."""

    DEVELOPMENT = "development"
    TESTING = "testing"
    STAGING = "staging"
    PRODUCTION = "production"


class Environment(StrEnum):
    """The seed's four deployment types, used as environments."""

    DEVELOPMENT = "development"
    TESTING = "testing"
    STAGING = "staging"
    PRODUCTION = "production"


class Outcome(StrEnum):
    """How a build or deployment ended."""

    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"


class ValidationType(StrEnum):
    """The seed's four validation types."""

    COMPONENT = "component"
    SYSTEM = "system"
    QUALITY = "quality"
    PERFORMANCE = "performance"


class ValidationOutcome(StrEnum):
    """``passed``/``failed`` is the verdict; ``error`` means the check itself could not run."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"


class IncidentStatus(StrEnum):
    OPENED = "opened"
    RESOLVED = "resolved"


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Seconds = Annotated[float, Field(ge=0), AfterValidator(_finite)]
EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/@+#=-]+$")]
Label = Annotated[str, Field(min_length=1, max_length=128)]
TraceId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
SpanId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    id: EventId = Field(
        description="Caller-chosen identifier; retries with the same id are "
        "recorded once (e.g. the CI pipeline id)."
    )
    timestamp: AwareDatetime | None = Field(
        default=None,
        description="When the event ended (RFC 3339 with offset); default: "
        "when the exporter received it.",
    )
    trace_id: TraceId | None = Field(
        default=None,
        description="W3C trace id (32 lowercase hex digits) of the run; becomes "
        "the exemplar of the duration histogram.",
    )
    span_id: SpanId | None = Field(default=None, description="W3C span id (16 hex digits).")

    def time(self, default: float) -> float:
        """The event's time in Unix seconds (``default`` when it has none)."""
        return self.timestamp.timestamp() if self.timestamp is not None else default


class BuildEvent(_EventBase):
    """A finished build (``cicd.pipeline.task.type`` build)."""

    kind: Literal["build"] = "build"
    build_type: BuildType
    outcome: Outcome
    duration_seconds: Seconds | None = None
    version: Label | None = None


class DeploymentEvent(_EventBase):
    """A finished deployment; ``commit_time`` (the change's time) gives the lead time."""

    kind: Literal["deployment"] = "deployment"
    environment: Environment
    outcome: Outcome
    duration_seconds: Seconds | None = None
    version: Label | None = None
    commit_time: AwareDatetime | None = Field(
        default=None,
        description="Time of the change being deployed (commit or merge); the "
        "lead time is the successful deployment's time minus this.",
    )


class ValidationEvent(_EventBase):
    """A finished validation of one of the seed's four types."""

    kind: Literal["validation"] = "validation"
    validation_type: ValidationType
    outcome: ValidationOutcome
    duration_seconds: Seconds | None = None
    subject: Label | None = Field(default=None, description="What was validated.")


class IncidentEvent(_EventBase):
    """An incident opened (the environment is failed from its time) or resolved."""

    kind: Literal["incident"] = "incident"
    environment: Environment
    status: IncidentStatus = IncidentStatus.OPENED


Event = Annotated[
    BuildEvent | DeploymentEvent | ValidationEvent | IncidentEvent, Field(discriminator="kind")
]
_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class EventError(ValueError):
    """An event failed validation; ``errors`` maps each bad field (dotted path) to why."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


def _field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        # The discriminated union adds the kind as the first path element: drop it.
        if loc and loc[0] in ("build", "deployment", "validation", "incident"):
            loc = loc[1:]
        key = ".".join(loc) or "body"
        if err["type"] == "union_tag_invalid":
            key, msg = "kind", "must be one of build, deployment, validation, incident"
        elif err["type"] == "union_tag_not_found":
            key, msg = "kind", "Field required"
        else:
            msg = err["msg"]
        errors.setdefault(key, msg)
    return errors


def parse_event(raw: bytes | str | Mapping[str, Any]) -> Event:
    """Validate one event from JSON (strict: ``"42"`` is not a number) or a mapping."""
    try:
        if isinstance(raw, bytes | str):
            return _ADAPTER.validate_json(raw, strict=True)
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise EventError(_field_errors(exc)) from None


def dump_event(event: Event) -> str:
    """The event as compact JSON (what the store keeps)."""
    return event.model_dump_json(exclude_none=True)


def event_json_schema() -> dict[str, Any]:
    """JSON Schema of an event (the OpenAPI document embeds it)."""
    return _ADAPTER.json_schema(ref_template="#/components/schemas/{model}")


def to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class EventRecorder(Protocol):
    """Where the SDK sends the events its stages produce (the store, OTel instruments, both).

    ``record`` must not raise: telemetry never crashes its host.
    """

    async def record(self, event: Event) -> None: ...
