# Two entry points on a fresh machine:
#   make quick   - set up .venv, then train the embedded default (quick.flags)
#   make test    - set up .venv, then run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

.PHONY: venv quick test
venv: $(VENV)/.installed

quick: venv
	$(PY) -m training.main --flagfile=quick.flags

test: venv
	$(PY) -m pytest -ra --durations=15 tests
