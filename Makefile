# Two commands on a fresh machine with python3 (3.11+) and make:
#   make demo   - run the sample catalog through the emulator into a local S3 server
#   make test   - the unit and end-to-end tests (make scenarios: the process-level ones)
#   make ui-test - the Prefect UI in Chromium (apt-get install -y chromium; skipped without it)
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
# Use the system certificate store (networks with their own CA, e.g. a registry proxy).
# UV_NATIVE_TLS is the older name of UV_SYSTEM_CERTS, for an older uv already on the PATH.
# Bytecode compiled at install: with PYTHONDONTWRITEBYTECODE set, every process would
# otherwise compile each module it imports (importing the flow: 10.3 s of CPU, not 5.0 s);
# the project's own modules are compiled by compileall in the install step.
export UV_COMPILE_BYTECODE := 1
export UV_SYSTEM_CERTS := 1
export UV_NATIVE_TLS := 1

.PHONY: install demo test scenarios ui-test lint bench reliability clean

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	$(UV) run --frozen python -m compileall -q catalog_images flows tasks bench
	@touch $@

install: .venv/.installed

demo: install
	$(UV) run catalog-images demo

# Four pytest workers (pytest-xdist) on two cores: most tests wait on the emulator, S3, a
# child process or a time window (two workers kept the CPU 54% busy, four 79%: 339 s -> 281 s
# here); worksteal keeps them all busy to the end. Process-level scenarios (kill -9,
# SIGTERM, deployments on workers, shards) take minutes each and load the machine more:
# `make scenarios` runs them, two at a time (CI runs both targets).
test: install
	$(UV) run ruff check .
	$(UV) run lint-imports
	$(UV) run pytest -n 4 --dist worksteal -m "not scenario"

scenarios: install
	$(UV) run pytest -n 2 --dist worksteal -m scenario

# The Prefect UI in a real browser, not part of make test: Playwright (the `ui` dependency
# group) drives the system Chromium (Debian package `chromium`) through the grouped run form,
# the spend approval in the paused run's resume form, and the summary; the test says it was
# skipped when there is no Chromium. It refreshes the README's screenshots,
# docs/images/ui-run-form.png, ui-approval.png and ui-run-summary.png.
ui-test: install
	$(UV) sync --frozen --group ui
	$(UV) run --frozen --group ui pytest tests/ui

bench: install
	$(UV) run python -m bench.throughput
	$(UV) run python -m bench.quota
	$(UV) run python -m bench.noop
	$(UV) run python -m bench.memory
	$(UV) run python -m bench.overload
	$(UV) run python -m bench.payload

reliability: install
	$(UV) run python -m bench.soak

lint: install
	$(UV) run ruff check .
	$(UV) run lint-imports

clean:
	rm -rf .demo .bench .pytest_cache
