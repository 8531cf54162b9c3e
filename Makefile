# implmon: `make demo` runs the stack, `make test` runs every check. Both set themselves up.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all demo test lint rules-test alerting-test unit bench deps system-deps clean dashboards

all: test

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

deps: $(STAMP) system-deps

# Debian's Prometheus and Alertmanager (binaries prometheus, promtool, prometheus-alertmanager,
# amtool) and Chromium for the status-page test; installed only when missing.
system-deps:
	@missing=""; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check exporter tests bench scripts
	$(VENV)/bin/ruff format --check exporter
	$(VENV)/bin/mypy --strict exporter/implmon

rules-test: deps
	$(PY) scripts/check_rules.py

unit: deps
	$(VENV)/bin/pytest -q -p no:cacheprovider

test: deps lint rules-test unit

demo: deps
	$(PY) scripts/demo.py

# Regenerate dashboards/*.json from exporter/implmon/dashboards/ (commit the result).
dashboards: $(STAMP)
	$(VENV)/bin/implmon dashboards generate

# Each benchmark prints its figures side by side with its baseline; BENCHMARKS.md records them.
bench: deps
	$(PY) bench/scrape.py
	$(PY) bench/ingest.py throughput
	$(PY) bench/ingest.py throughput --synchronous full
	$(PY) bench/ingest.py crash --iterations 20
	$(PY) bench/sdk_overhead.py
	$(PY) bench/alert_latency.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
