# Quick start:  make serve  (the bundled demo on http://127.0.0.1:8080)
#               make test   (every test: Swift unit tests, Python unit and functional tests)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: serve test install swift-test py-test fuzz-smoke clean

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

# A short, bounded libFuzzer pass over the parser and body receivers
# (fuzz/run.sh SECONDS runs longer ones).
fuzz-smoke:
	fuzz/run.sh 30

test: swift-test py-test fuzz-smoke

clean:
	rm -rf .build .build-* $(VENV) build src/*.egg-info
