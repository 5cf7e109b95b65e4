# Quick start:  make serve  (the bundled demo on http://127.0.0.1:8080)
#               make test   (every test: Swift unit tests, Python unit and functional tests)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: serve test install swift-test py-test py-other upstream-test fuzz-smoke wheels wheel-test sdist-test clean

# The other interpreters the suite runs on (pyenv's, as on this machine kind).
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
OTHER_PYTHONS ?= 3.9 3.13

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Builds the Swift core (release, static Swift runtime) and installs the package,
# only when something it is built from changed since the last install. The Swift
# build runs first on its own so that its progress shows (pip would hide it).
INSTALL_STAMP := $(VENV)/.installed
BUILD_INPUTS := Package.swift setup.py pyproject.toml MANIFEST.in \
	$(wildcard tools/swift_build.py tools/glibc_compat.c tools/exports.map) \
	$(shell find Sources src -type f -not -name '*.pyc' -not -path '*.egg-info/*' 2>/dev/null)

install: $(INSTALL_STAMP)

# $(PY) is order-only: it is a symlink to the interpreter, whose mtime is not ours.
$(INSTALL_STAMP): $(BUILD_INPUTS) | $(PY)
	$(PY) tools/swift_build.py
	$(PY) -m pip install --quiet ".[testing]"
	touch $@

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

# Packaging: wheels that need no Swift (tools/wheels.py says what each checks).
PKG_VENV ?= .venv-pkg
PKG_PY := $(PKG_VENV)/bin/python
PKG_STAMP := $(PKG_VENV)/.installed
PKG_RUN := PATH="$(CURDIR)/$(PKG_VENV)/bin:$$PATH" $(PKG_PY) tools/wheels.py
# The interpreter .venv was made from (pyenv's shim resolves to a real one).
DEFAULT_PYTHON = $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
WHEEL_PYTHONS ?= 3.9 3.10 3.11 3.12 3.13

$(PKG_STAMP): tools/requirements.txt
	[ -x $(PKG_PY) ] || $(PYTHON) -m venv $(PKG_VENV)
	$(PKG_PY) -m pip install --quiet --upgrade pip
	$(PKG_PY) -m pip install --quiet -r tools/requirements.txt
	touch $@

# The default Python's wheel (reusing make install's Swift build), installed and
# served without swift on PATH, auditwheel's policy, and the sdist's contents
# and no-Swift error. Part of make test.
wheel-test: install $(PKG_STAMP)
	$(PKG_RUN) --check-sdist $(DEFAULT_PYTHON)

# The five wheels into dist/, each checked the same way (not in CI: a cold Swift
# build per Python version the first time).
wheels: $(PKG_STAMP)
	set -e; pys=""; for v in $(WHEEL_PYTHONS); do \
	  exe=$$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python3 | sort -V | tail -1); \
	  test -x "$$exe" || { echo "Python $$v not found under $(PYENV_ROOT)"; exit 1; }; \
	  pys="$$pys $$exe"; \
	done; \
	$(PKG_RUN) --check-sdist $$pys

# pip install of the sdist where Swift is installed: a cold Swift build (minutes).
sdist-test: $(PKG_STAMP)
	$(PKG_RUN) --install-sdist $(DEFAULT_PYTHON)

# The fuzz pass first, so the last lines are a test runner's summary.
test: fuzz-smoke wheel-test swift-test py-test py-other

clean:
	rm -rf .build .build-* $(VENV) $(PKG_VENV) build dist src/*.egg-info
