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

# Two pytest workers (pytest-xdist), one test file each at a time: the module
# fixtures are built once, and the CPU-bound files overlap on a 2-core machine.
test: venv
	$(PY) -m pytest -ra --durations=15 -n auto --maxprocesses=2 --dist loadfile tests
