# ReviewDesk developer commands. `make run` opens the app on the demo; `make test` runs everything.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export QT_QPA_PLATFORM ?= offscreen

.PHONY: venv run test lint unit gui integration pg bench demo wheel frozen clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,build]"
	touch $(STAMP)

venv: $(STAMP)

# The GUI on the bundled demo project (on a headless machine: `xvfb-run make run`).
run: QT_QPA_PLATFORM =
run: venv
	$(BIN)/reviewdesk --demo

# Lint + import contracts + type checks + the whole test suite (unit, GUI, integration). The integration tests
# marked for both Label Studio back ends need a local PostgreSQL: `make pg` once, as root (.ci/run does it).
test: venv lint
	$(BIN)/python -m pytest tests

lint: venv
	$(BIN)/ruff check app tests benchmarks scripts
	$(BIN)/lint-imports
	$(BIN)/mypy

unit: venv
	$(BIN)/python -m pytest tests/unit

gui: venv
	$(BIN)/python -m pytest tests/gui

integration: venv
	$(BIN)/python -m pytest tests/integration

# Local PostgreSQL (loopback only) + test role for the PostgreSQL-backed integration tests; needs root.
pg:
	bash scripts/pg_test_cluster.sh

bench: venv
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

demo: venv
	$(BIN)/python scripts/make_demo.py

# A wheel in dist/: run-time data ships inside the app package (docs/adr/0010; tests/unit/test_wheel_install.py).
wheel: venv
	$(BIN)/python -m pip wheel --no-deps -w dist .

# The one-folder app (PyInstaller) in dist/reviewdesk/, checked with --version and --self-test (docs/adr/0016;
# macOS: installers/build-macos.sh, Windows: installers/build-windows.ps1). Needs binutils (objdump).
frozen: venv
	PY=$(BIN)/python bash installers/build-linux.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build dist
