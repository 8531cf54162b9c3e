# The implmon exporter image (also runs the demo agents: `docker run implmon demo agents`).
# Build: docker build -t implmon:0.1.0 .   Run: see docker-compose.yml.
FROM python:3.12.9-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs: a change to tests or docs does not rebuild this layer.
COPY pyproject.toml README.md ./
COPY exporter ./exporter
# The `exporter` extra brings the OpenTelemetry SDK and OTLP exporter the process wires up.
RUN pip install ".[exporter]" \
    && useradd --system --uid 10001 --home-dir /var/lib/implmon implmon \
    && mkdir -p /var/lib/implmon /etc/implmon \
    && chown implmon /var/lib/implmon

USER implmon
WORKDIR /var/lib/implmon
EXPOSE 9464
VOLUME ["/var/lib/implmon"]
HEALTHCHECK --interval=10s --timeout=5s --retries=6 --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/-/healthy', timeout=3)"]
ENTRYPOINT ["implmon"]
CMD ["run", "--config", "/etc/implmon/implmon.yaml", "--web.listen-address", "0.0.0.0:9464"]
