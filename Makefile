# fabcity: `make demo` runs the whole system locally; `make test` runs the whole suite.
# Both install what they need on a fresh Debian/Raspberry Pi OS machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the test suite needs: the broker, the databases (InfluxDB 1.x, and
# VictoriaMetrics for the InfluxDB v2 write API), C/C++ compilers for the firmware tests, and
# a headless browser for the citizen page.
TEST_DEBS := mosquitto influxdb victoria-metrics gcc g++ chromium
# benchmarks/edge.py counts the edge agent's fsync/fdatasync calls with strace.
BENCH_DEBS := strace

.PHONY: demo test lint typecheck bench system-deps clean help

help:
	@echo "make demo   - install into $(VENV) and run the whole system on http://127.0.0.1:8000"
	@echo "make test   - install test dependencies (Debian packages too) and run the suite"
	@echo "make lint   - ruff"
	@echo "make typecheck - mypy"
	@echo "make bench  - run the benchmarks in benchmarks/ (installs strace too)"

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
		echo "python3 -m venv failed: installing Debian's python3-venv"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends python3-venv \
		&& rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fabcity demo $(DEMO_ARGS)

system-deps:
	@missing=""; for p in $(TEST_DEBS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" \
			|| missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

test: $(STAMP) system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy fabcity edge hub firmware_bridge

bench: $(STAMP)
	$(MAKE) system-deps TEST_DEBS="$(TEST_DEBS) $(BENCH_DEBS)"
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/edge.py
	$(BIN)/python benchmarks/edge_confirm.py
	$(BIN)/python benchmarks/bridge.py
	$(BIN)/python benchmarks/page_weight.py

clean:
	rm -rf $(VENV) build *.egg-info
