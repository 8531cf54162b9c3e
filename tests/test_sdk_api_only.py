"""The SDK modules need only opentelemetry-api: import and use them with the SDK blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Every module a deploy tool embedding implmon imports. telemetry and testing are the two that
# wire or capture with the SDK, by design.
SDK_MODULES = (
    "implmon.events",
    "implmon.pipeline",
    "implmon.factory",
    "implmon.builder",
    "implmon.deployer",
    "implmon.validator",
    "implmon.manager",
    "implmon.store",
    "implmon.dora",
    "implmon.ingest",
    "implmon.cli_event",
)

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib, sys, tempfile, pathlib

    class BlockSdk:
        # Pretend the OpenTelemetry SDK and exporters are not installed.
        def find_spec(self, name, path=None, target=None):
            if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
                raise ImportError(f"{name} is blocked: the SDK modules must use the API only")
            return None

    sys.meta_path.insert(0, BlockSdk())
    for module in sys.argv[1:]:
        importlib.import_module(module)

    from implmon.manager import ImplementationManager

    async def main(path):
        async with ImplementationManager.open(path) as manager:
            build = await manager.builder.build_system(["api"], "staging", version="1")
            async with manager.deployer.deployment("staging", build=build):
                pass
            report = await manager.validator.validate_implementation(build)
            assert report.passed
            assert build.trace_id is None  # no SDK: spans are non-recording
            return manager.metrics_text().decode()

    with tempfile.TemporaryDirectory() as d:
        text = asyncio.run(main(pathlib.Path(d) / "e.db"))
    assert 'implmon_deployments_total{environment="staging",outcome="success"} 1' in text, text
    loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk"))
    assert not loaded, loaded
    print("ok")
    """
)


def test_sdk_modules_work_with_the_api_only() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *SDK_MODULES],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_blocking_really_blocks() -> None:
    """The guard itself works: importing the SDK under it fails."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, "implmon.telemetry"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert "opentelemetry.sdk" in result.stderr and "is blocked" in result.stderr
