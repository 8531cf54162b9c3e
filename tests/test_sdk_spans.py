"""The span trees of the SDK's stages, captured with an in-memory exporter.

Names, parents, CI/CD-convention attributes and error status of create_component, build_system,
deploy_system (both forms) and validate_implementation.
"""

from __future__ import annotations

import asyncio

import pytest
from implmon.builder import Build, BuildError, SystemBuilder
from implmon.component import Role
from implmon.deployer import Deployment, DeploymentError, SystemDeployer
from implmon.events import Outcome, ValidationOutcome
from implmon.factory import ComponentCreationError, ComponentFactory
from implmon.testing import CapturedTelemetry, capture_telemetry
from implmon.validator import Check, ImplementationValidator
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode


@pytest.fixture
def cap() -> CapturedTelemetry:
    with capture_telemetry() as captured:
        yield captured  # type: ignore[misc]


def children(cap: CapturedTelemetry, parent: ReadableSpan) -> list[str]:
    assert parent.context is not None
    kids = [
        s
        for s in cap.spans()
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]
    return [s.name for s in sorted(kids, key=lambda s: s.start_time or 0)]


def same_trace(spans: list[ReadableSpan]) -> bool:
    return len({s.context.trace_id for s in spans if s.context is not None}) == 1


async def test_create_component_span_tree(cap: CapturedTelemetry) -> None:
    factory = ComponentFactory(tracer_provider=cap.tracer_provider)
    await factory.create_component({"kind": "health", "name": "health"}, Role.ANALYZER)
    root = cap.span("create_component")
    assert root.parent is None
    assert children(cap, root) == [
        "register_component",
        "create",
        "validate_component",
        "monitor_component",
    ]
    assert root.attributes is not None
    assert root.attributes["implmon.component.type"] == "analyzer"
    assert root.attributes["implmon.component.kind"] == "health"
    assert root.attributes["implmon.outcome"] == "success"
    assert root.status.status_code is not StatusCode.ERROR
    assert same_trace(cap.spans())


async def test_create_component_error_status(cap: CapturedTelemetry) -> None:
    factory = ComponentFactory(tracer_provider=cap.tracer_provider)
    with pytest.raises(ComponentCreationError):
        await factory.create_component({"kind": "no_such_kind", "name": "x"}, Role.COLLECTOR)
    root = cap.span("create_component")
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes is not None and root.attributes["implmon.outcome"] == "failure"
    assert any(e.name == "exception" for e in root.events)


async def test_build_system_span_tree(cap: CapturedTelemetry) -> None:
    async def tester(build: Build) -> dict[str, int]:
        return {"passed": 12}

    builder = SystemBuilder(tester=tester, **cap.sdk_kwargs())
    build = await builder.build_system(
        ["collector", "reporter"], "staging", version="1.4.2", build_id="b-1"
    )
    assert build.outcome is Outcome.SUCCESS
    assert build.artifacts["test_system"] == {"passed": 12}
    print(cap.span_tree())
    assert cap.span_tree() == (
        "build_system\n  assemble_system\n  test_system\n  validate_build\n  process_build"
    )
    root = cap.span("build_system")
    attrs = dict(root.attributes or {})
    assert attrs["cicd.pipeline.name"] == "build_system"
    assert attrs["cicd.pipeline.run.id"] == "b-1"
    assert attrs["cicd.pipeline.result"] == "success"
    assert attrs["implmon.build_type"] == "staging"
    assert attrs["implmon.version"] == "1.4.2"
    assert attrs["implmon.outcome"] == "success"
    assert attrs["implmon.component.count"] == 2
    task_types = {
        s.name: dict(s.attributes or {})["cicd.pipeline.task.type"]
        for s in cap.spans()
        if s.name != "build_system"
    }
    assert task_types == {
        "assemble_system": "build",
        "test_system": "test",
        "validate_build": "test",
        "process_build": "build",
    }
    # The recorded event carries the stage's trace for exemplars.
    (event,) = cap.events
    assert root.context is not None
    assert event.trace_id == f"{root.context.trace_id:032x}"
    assert event.span_id == f"{root.context.span_id:016x}"
    assert cap.metric("implmon.builds", build_type="staging", outcome="success") == 1


async def test_build_failure_sets_error_status(cap: CapturedTelemetry) -> None:
    async def tester(build: Build) -> None:
        raise RuntimeError("3 tests failed")

    builder = SystemBuilder(tester=tester, **cap.sdk_kwargs())
    with pytest.raises(
        BuildError,
        match=r"production build b-2: test_system failed: "
        r"RuntimeError: 3 tests failed",
    ) as info:
        await builder.build_system([], "production", build_id="b-2")
    assert info.value.build.outcome is Outcome.FAILURE
    root, test = cap.span("build_system"), cap.span("test_system")
    assert root.status.status_code is StatusCode.ERROR
    assert test.status.status_code is StatusCode.ERROR
    assert dict(test.attributes or {})["cicd.pipeline.task.run.result"] == "failure"
    assert dict(root.attributes or {})["cicd.pipeline.result"] == "failure"
    assert dict(root.attributes or {})["error.type"] == "RuntimeError"
    assert [e.name for e in root.events] == ["exception"]
    # Steps after the failing one do not run; the event is still recorded.
    assert cap.spans("validate_build") == []
    assert cap.span_tree().splitlines()[-1] == "  process_build"
    assert cap.events[0].outcome is Outcome.FAILURE


async def test_hook_returning_false_fails_the_step(cap: CapturedTelemetry) -> None:
    async def no(build: Build) -> bool:
        return False

    builder = SystemBuilder(validator=no, **cap.sdk_kwargs())
    with pytest.raises(BuildError, match="validate_build failed: StageFailed"):
        await builder.build_system([], "testing")
    assert cap.span("validate_build").status.status_code is StatusCode.ERROR


async def test_deploy_system_span_tree(cap: CapturedTelemetry) -> None:
    builder = SystemBuilder(**cap.sdk_kwargs())
    build = await builder.build_system(["a"], "production", version="2.0.0")
    cap.clear()
    deployer = SystemDeployer(**cap.sdk_kwargs())
    dep = await deployer.deploy_system(build, "production", deployment_id="d-1")
    assert dep.outcome is Outcome.SUCCESS and dep.version == "2.0.0"
    assert cap.span_tree() == (
        "deploy_system\n  provision_resources\n  deploy_components\n  validate_deployment\n"
        "  process_deployment"
    )
    attrs = dict(cap.span("deploy_system").attributes or {})
    assert attrs["deployment.environment.name"] == "production"
    assert attrs["implmon.environment"] == "production"
    assert attrs["implmon.build.id"] == build.id
    assert attrs["implmon.version"] == "2.0.0"
    assert attrs["cicd.pipeline.result"] == "success"
    assert dict(cap.span("deploy_components").attributes or {})["cicd.pipeline.task.type"] == (
        "deploy"
    )


async def test_deploy_failure(cap: CapturedTelemetry) -> None:
    async def unhealthy(dep: Deployment) -> None:
        raise ConnectionError("readiness probe failed on 2 of 3 pods")

    deployer = SystemDeployer(validator=unhealthy, **cap.sdk_kwargs())
    with pytest.raises(DeploymentError, match="validate_deployment failed"):
        await deployer.deploy_system(None, "staging")
    assert cap.span("deploy_system").status.status_code is StatusCode.ERROR
    assert cap.span("validate_deployment").status.status_code is StatusCode.ERROR
    assert cap.events[0].outcome is Outcome.FAILURE
    assert cap.metric("implmon.deployments", environment="staging", outcome="failure") == 1


async def test_deployment_context_manager_failure_propagates_unchanged(
    cap: CapturedTelemetry,
) -> None:
    deployer = SystemDeployer(**cap.sdk_kwargs())
    with pytest.raises(ValueError, match="helm: release failed"):
        async with deployer.deployment("production", version="1.4.2") as run:
            run.set_attribute("helm.chart", "api")
            raise ValueError("helm: release failed")
    assert run.outcome is Outcome.FAILURE
    assert cap.span_tree() == "deploy_system\n  deploy_components\n  process_deployment"
    root = cap.span("deploy_system")
    assert root.status.status_code is StatusCode.ERROR
    assert dict(root.attributes or {})["helm.chart"] == "api"
    assert cap.span("deploy_components").status.status_code is StatusCode.ERROR


async def test_deployment_context_manager_cancellation(cap: CapturedTelemetry) -> None:
    deployer = SystemDeployer(**cap.sdk_kwargs())
    started = asyncio.Event()

    async def rollout() -> None:
        async with deployer.deployment("testing", version="9"):
            started.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(rollout())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    root = cap.span("deploy_system")
    attrs = dict(root.attributes or {})
    assert attrs["cicd.pipeline.result"] == "cancellation"
    assert attrs["implmon.outcome"] == "cancelled"
    # A cancellation is not an error.
    assert root.status.status_code is not StatusCode.ERROR
    assert cap.events[0].outcome is Outcome.CANCELLED
    assert cap.metric("implmon.deployments", environment="testing", outcome="cancelled") == 1


async def test_validate_implementation_tree_and_outcomes(cap: CapturedTelemetry) -> None:
    async def quality(target: object) -> list[Check]:
        return [Check("coverage >= 80%", ValidationOutcome.FAILED, "71%")]

    async def performance(target: object) -> bool:
        raise TimeoutError("benchmark host unreachable")

    validator = ImplementationValidator(
        quality=quality, performance=performance, **cap.sdk_kwargs()
    )
    report = await validator.validate_implementation(["api", "api"], validation_id="v-1")
    assert {t.value: r.outcome for t, r in report.results.items()} == {
        "component": ValidationOutcome.PASSED,
        "system": ValidationOutcome.FAILED,  # duplicate names
        "quality": ValidationOutcome.FAILED,
        "performance": ValidationOutcome.ERROR,
    }
    assert report.outcome is ValidationOutcome.FAILED
    assert cap.span_tree() == (
        "validate_implementation\n  component_validation\n  system_validation\n"
        "  quality_validation\n  performance_validation\n  report_validation"
    )
    assert cap.span("performance_validation").status.status_code is StatusCode.ERROR
    assert cap.span("validate_implementation").status.status_code is StatusCode.ERROR
    assert [(e.id, e.outcome.value) for e in cap.events] == [
        ("v-1/component", "passed"),
        ("v-1/system", "failed"),
        ("v-1/quality", "failed"),
        ("v-1/performance", "error"),
    ]
    assert cap.metric("implmon.validations", validation_type="performance", outcome="error") == 1


async def test_composite_recorder_survives_a_failing_recorder(cap: CapturedTelemetry) -> None:
    from implmon.events import Event
    from implmon.pipeline import CompositeRecorder

    class Broken:
        async def record(self, event: Event) -> None:
            raise OSError("disk full")

    recorder = CompositeRecorder([Broken(), cap.recorder])
    builder = SystemBuilder(recorder=recorder, tracer_provider=cap.tracer_provider)
    build = await builder.build_system([], "development", build_id="b-c")
    assert build.outcome is Outcome.SUCCESS  # telemetry never fails its host
    assert [e.id for e in cap.events] == ["b-c"]
