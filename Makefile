# From Notebook to Production: every command the workbook needs.
#
#   make demo                 the whole production story, run with the reference solution
#   make test                 everything CI checks (reference solution, stubs, notebooks)
#   make lab                  JupyterLab on notebooks/, importing your package deployment/
#   make grade [PART=N] [SUBMISSION=path]   score a package: tests and notebooks, part by part
#
# Each target creates .venv and installs the pinned requirements first, if needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
READY := $(VENV)/.ready-$(shell cksum < requirements.txt | cut -d' ' -f1)
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=300
PART ?=
SUBMISSION ?=

.PHONY: help install test test-solutions test-stubs demo lab grade release check-release bench clean doctest mutation-check

help:
	@sed -n '2,10p' Makefile

install: $(READY)

$(READY): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# Let notebooks and scripts find the student package wherever they start.
	@$(PY) -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "notebook_to_production.pth").write_text("$(CURDIR)\n")'
	@rm -f $(VENV)/.ready-*
	@touch $@

test: check-release test-solutions test-stubs

test-solutions: $(READY)
	$(PY) -m pytest --impl=solutions -n 2 --dist loadfile tests notebooks $(NBVAL)

test-stubs: $(READY)
	$(PY) tools/grade.py --expect-fail

check-release:
	$(PYTHON) tools/release.py --check

# Every >>> example of the reference package, run with the names solutions/conftest.py gives.
doctest: $(READY)
	$(PY) -m pytest --impl=solutions -p no:nbval --doctest-modules solutions/deployment

# Break each refusal message and numeric result of the solutions in turn; fail if no graded test notices.
mutation-check: $(READY)
	$(PY) tools/mutation.py --json build/mutation.json

release:
	$(PYTHON) tools/release.py

demo: $(READY)
	PYTHONSAFEPATH=1 PYTHONPATH=$(CURDIR)/solutions $(PY) -m deployment demo --out build/demo

lab: $(READY)
	$(BIN)/jupyter lab --notebook-dir=notebooks

grade: $(READY)
	$(PY) tools/grade.py $(if $(PART),--part $(PART)) $(if $(SUBMISSION),--submission "$(SUBMISSION)")

bench: $(READY)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; PYTHONSAFEPATH=1 PYTHONPATH=$(CURDIR)/solutions $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build .pytest_cache
