# Quick start:  make serve  (the bundled demo on http://127.0.0.1:8080)
#               make test   (every test: Swift unit tests, Python unit and functional tests)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: serve test install swift-test py-test py-other upstream-test fuzz-smoke clean

# The other interpreters the suite runs on (pyenv's, as on this machine kind).
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
OTHER_PYTHONS ?= 3.9 3.13

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Builds the Swift core (release, static Swift runtime) and installs the package.
install: $(PY)
	$(PY) -m pip install --quiet ".[testing]"

serve: install
	$(PY) -m waitress --listen=127.0.0.1:8080 waitress.demo:app

swift-test:
	swift test

py-test: install
	cd tests && ../$(PY) -m pytest -q -p no:cacheprovider unit functional
	tests/stubtest.sh
	$(MAKE) upstream-test

# Waitress 3.0.2's own functional and public-API tests, fetched from PyPI at test time,
# against the installed package (expected failures: tests/upstream/upstream_expectations.py).
upstream-test: install
	$(PY) tests/upstream/run.py

# A short, bounded libFuzzer pass over the parser and body receivers
# (fuzz/run.sh SECONDS runs longer ones).
fuzz-smoke:
	fuzz/run.sh 30

# Unit and functional tests on the other supported interpreters.
py-other:
	set -e; for v in $(OTHER_PYTHONS); do \
	  exe=$$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python3 | sort -V | tail -1); \
	  test -x "$$exe" || { echo "Python $$v not found under $(PYENV_ROOT)"; exit 1; }; \
	  [ -x .venv-$$v/bin/python ] || $$exe -m venv .venv-$$v; \
	  .venv-$$v/bin/python -m pip install --quiet --upgrade pip; \
	  .venv-$$v/bin/python -m pip install --quiet ".[testing]"; \
	  (cd tests && ../.venv-$$v/bin/python -m pytest -q -p no:cacheprovider unit functional); \
	  .venv-$$v/bin/python tests/upstream/run.py; \
	done

# The fuzz pass first, so the last lines are a test runner's summary.
test: fuzz-smoke swift-test py-test py-other

clean:
	rm -rf .build .build-* $(VENV) build src/*.egg-info
