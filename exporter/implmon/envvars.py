"""Every environment variable implmon reads, as a documented constant.

The standard ``OTEL_*`` variables are read by the OpenTelemetry SDK itself (see
:mod:`implmon.telemetry`); they are listed here so that one module names them all.
Secrets never appear in config files: a config value of ``${NAME}`` is replaced by the
variable's value when the file is loaded, and ``*_file`` settings name a file to read.
"""

from __future__ import annotations

__all__ = [
    "GRAFANA_PASSWORD",
    "GRAFANA_TOKEN",
    "GRAFANA_URL",
    "GRAFANA_USER",
    "IMPLMON_CONFIG",
    "IMPLMON_INGEST_TOKEN",
    "IMPLMON_LISTEN_ADDRESS",
    "IMPLMON_LOG_FORMAT",
    "IMPLMON_LOG_LEVEL",
    "IMPLMON_TOKEN",
    "IMPLMON_URL",
    "OTEL_VARIABLES",
    "TRACEPARENT",
]

#: Default for ``implmon run --config`` when the flag is not given.
IMPLMON_CONFIG = "IMPLMON_CONFIG"
#: Default for ``--web.listen-address`` when neither the flag nor the config sets it.
IMPLMON_LISTEN_ADDRESS = "IMPLMON_LISTEN_ADDRESS"
#: Log level (debug, info, warning, error); ``--log.level`` wins.
IMPLMON_LOG_LEVEL = "IMPLMON_LOG_LEVEL"
#: Log format (logfmt or json); ``--log.format`` wins.
IMPLMON_LOG_FORMAT = "IMPLMON_LOG_FORMAT"
#: Bearer token the exporter's ingest API expects when ``ingest.token`` is not configured.
IMPLMON_INGEST_TOKEN = "IMPLMON_INGEST_TOKEN"  # noqa: S105 - a variable name, not a secret
#: Bearer token ``implmon event ...`` sends (``--token-file`` wins).
IMPLMON_TOKEN = "IMPLMON_TOKEN"  # noqa: S105 - a variable name, not a secret
#: Exporter base URL for ``implmon event ...`` when ``--url`` is not given.
IMPLMON_URL = "IMPLMON_URL"

#: W3C trace context of the CI job (as otel-cli and CI tracing plugins set it); ``implmon event``
#: takes the trace id from it when ``--trace-id`` is not given.
TRACEPARENT = "TRACEPARENT"

#: Standard OpenTelemetry variables honoured through the SDK (not read by implmon directly).
OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRICS_EXEMPLAR_FILTER",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
)

#: ``implmon dashboards push``: base URL of the Grafana to push to (``--grafana-url`` wins).
GRAFANA_URL = "GRAFANA_URL"
#: ``implmon dashboards push``: a service-account token; preferred over user and password.
GRAFANA_TOKEN = "GRAFANA_TOKEN"  # noqa: S105 - the variable's name, not a token
#: ``implmon dashboards push``: user for basic auth, with ``GRAFANA_PASSWORD``.
GRAFANA_USER = "GRAFANA_USER"
#: ``implmon dashboards push``: password for basic auth.
GRAFANA_PASSWORD = "GRAFANA_PASSWORD"  # noqa: S105 - the variable's name, not a password
