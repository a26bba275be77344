# Two entry points that work on a fresh machine (see README.md):
#   make demo   set up, then run the main job: a chaos drill of the router against the mock
#               providers with a provider outage, offline, no API keys; prints the verdict and
#               the path of its HTML report
#   make test   set up, then lint, type-check, run the test suite and the quick drill suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test lint typecheck pytest drills user-project bench clean

$(BIN)/turnout: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/turnout

demo: setup
	$(BIN)/turnout drill chaos/drills/provider-outage.yaml --out drill-reports

hello: setup
	$(BIN)/python -m examples.hello_mock

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

drills: setup
	$(BIN)/turnout drill chaos/drills/*.yaml --quick --no-progress --out drill-reports

test: lint typecheck drills pytest

# turnout as a user installs it: a fresh virtualenv outside the repository, the README's
# in-process test file, pytest (CI runs this after `make test`)
user-project:
	PYTHON=$(PYTHON) bash .ci/user-project

clean:
	rm -rf $(VENV) build *.egg-info
