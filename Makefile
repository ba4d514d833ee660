# The two commands of the README:
#   make lab    set up .venv, build the extension, start JupyterLab on the demo workspace
#   make test   set up the same way, then lint, type-check and run the whole test suite
# Both need only Python 3.10+ and Node 20 on the PATH; everything else comes from PyPI/npm.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
PY     := $(BIN)/python
PIP    := $(PY) -m pip --disable-pip-version-check
# jlpm (yarn, shipped with jupyterlab) and jupyter-builder must be found by the build hook.
export PATH := $(BIN):$(PATH)

BUILD_DEPS := "hatchling>=1.5" "hatch-jupyter-builder>=0.5" "hatch-nodejs-version>=0.3.2" \
              "editables>=0.5" "jupyterlab>=4.2,<5" \
              "setuptools>=61" "wheel>=0.40"
SOURCES    := pyproject.toml labextension/package.json labextension/yarn.lock
LAB_ARGS   ?=
# Test files run in this many processes (pytest-xdist; a file's tests stay in one process).
TEST_JOBS  ?= 2

.PHONY: lab test lint fmt ui-deps bench openapi clean team

$(PY):
	$(PYTHON) -m venv $(VENV)

# Editable install: the build hook runs `jlpm install` and builds labextension/ into
# jupyter_dataops/labextension; `develop` links it where JupyterLab looks for extensions.
$(VENV)/.lab: $(PY) $(SOURCES)
	$(PIP) install -q $(BUILD_DEPS)
	$(PIP) install -q --no-build-isolation -e ".[postgres,demo]"
	$(BIN)/jupyter labextension develop --overwrite . >/dev/null
	touch $@

$(VENV)/.test: $(VENV)/.lab $(SOURCES)
	$(PIP) install -q --no-build-isolation -e ".[test]"
	touch $@

# As it stands for root too (containers run as root; jupyter would refuse to start), and
# opening on the welcome notebook (the URL it prints, and `/`).
lab: $(VENV)/.lab
	$(BIN)/jupyter dataops demo --root=notebooks
	@$(BIN)/jupyter dataops status --root=notebooks
	cd notebooks && $(BIN)/jupyter lab --ServerApp.root_dir=. --ServerApp.allow_root=True \
	    --LabApp.default_url=/lab/tree/welcome.ipynb $(LAB_ARGS)

# Team mode on this machine (needs root): JupyterHub, the proxy, the DataOps service as its own
# user on PostgreSQL, Dask; users alice, erin (analysts), bob (ops), carol. See docs/team.md.
TEAM_DIR ?= .team
team: $(VENV)/.lab
	$(PY) -m jupyter_dataops.team.stack --dir $(TEAM_DIR)

lint: $(VENV)/.test
	$(BIN)/ruff check jupyter_dataops tests bench
	$(BIN)/ruff format --check jupyter_dataops tests bench
	$(BIN)/mypy

test: $(VENV)/.test lint
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

fmt: $(VENV)/.test
	$(BIN)/ruff check --fix jupyter_dataops tests bench
	$(BIN)/ruff format jupyter_dataops tests bench

openapi: $(VENV)/.test
	$(PY) -m jupyter_dataops.api
	cd labextension && $(BIN)/jlpm gen:api

bench: $(VENV)/.test
	$(PY) bench/import_time.py
	$(PY) bench/pull.py

clean:
	rm -rf $(VENV) labextension/node_modules labextension/lib jupyter_dataops/labextension \
	    .team-test
