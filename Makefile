# From Notebook to Production: the commands of the workbook's source (the instructor's checkout).
#
#   make demo                 the whole production story, run with the reference solution
#   make test                 everything CI checks (see below); the README's test command
#   make lab                  JupyterLab on notebooks/, importing the student package deployment/
#   make grade [PART=N] [SECTION=K] [SUBMISSION=path] [JOBS=N] [TIME_LIMIT=s]
#                             a score table; SUBMISSION grades a checkout (or a folder of them) fairly
#   make student-release DEST=path [FORCE=1]
#                             the standalone student repository, without the answers
#   make release              regenerate deployment/ from solutions/deployment/
#   make bench                the speed figures of the reference solution
#
# make test = check-release (generator, docstring names), tools-test (the tools' own
# tests), doctest, mutation-check, then release-proof: the student release, built in
# a temporary folder, grades 0/100 on its stubs and 100/100 with the solutions.
# Each target creates .venv and installs the pinned requirements first, if needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
GRADE_READY := $(VENV)/.ready-grade-$(shell cksum < requirements.txt | cut -d' ' -f1)
LAB_READY := $(VENV)/.ready-lab-$(shell cksum < requirements-lab.txt | cut -d' ' -f1)
TOOLS_READY := $(VENV)/.ready-instructor-$(shell cksum < tools/requirements-instructor.txt | cut -d' ' -f1)
SOLUTIONS := PYTHONSAFEPATH=1 PYTHONPATH=$(CURDIR)/solutions
PART ?=
SECTION ?=
SUBMISSION ?=
JOBS ?=
TIME_LIMIT ?=
DEST ?=
FORCE ?=

.PHONY: help install test check-release tools-test doctest mutation-check release-proof \
	demo lab grade student-release release bench clean

help:
	@sed -n '1,16p' Makefile

install: $(GRADE_READY) $(LAB_READY) $(TOOLS_READY)

# Grading needs only requirements.txt; JupyterLab (requirements-lab.txt) comes with `make lab`.
$(GRADE_READY): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# Editors that start a kernel from .venv (VS Code, PyCharm) find the package deployment/ too.
	@if [ "$(VENV)" = .venv ]; then $(PY) -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "notebook_to_production.pth").write_text("$(CURDIR)\n")'; fi
	@rm -f $(VENV)/.ready-grade-*
	@touch $@

$(LAB_READY): requirements-lab.txt $(GRADE_READY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-lab.txt
	@rm -f $(VENV)/.ready-lab-*
	@touch $@

$(TOOLS_READY): tools/requirements-instructor.txt $(GRADE_READY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tools/requirements-instructor.txt
	@rm -f $(VENV)/.ready-instructor-*
	@touch $@

test: check-release tools-test
	$(MAKE) --no-print-directory doctest mutation-check
	$(MAKE) --no-print-directory release-proof

check-release:
	$(PYTHON) tools/release.py --check

tools-test: $(GRADE_READY) $(TOOLS_READY)
	$(PY) -m pytest -p no:cacheprovider -n 2 tools/tests --ignore=tools/tests/test_release_proof.py

# Every >>> example of the reference package, run with the names solutions/conftest.py gives.
doctest: $(GRADE_READY)
	$(PY) -m pytest --impl=solutions -p no:nbval --doctest-modules solutions/deployment

# Break each refusal message and numeric result of the solutions in turn; fail if no graded test notices.
mutation-check: $(GRADE_READY)
	$(PY) tools/mutation.py --json build/mutation.json

# The student release, built in a temporary folder, graded with this .venv (tools/tests/test_release_proof.py).
release-proof: $(GRADE_READY) $(TOOLS_READY)
	$(PY) -m pytest -p no:cacheprovider tools/tests/test_release_proof.py

release:
	$(PYTHON) tools/release.py

student-release:
	@test -n "$(DEST)" || { echo "make student-release needs DEST=path (an empty folder, or FORCE=1)"; exit 2; }
	$(PYTHON) tools/student_release.py "$(DEST)" $(if $(FORCE),--force)

demo: $(GRADE_READY)
	$(SOLUTIONS) $(PY) -m deployment demo --out build/demo

lab: $(LAB_READY)
	PYTHONSAFEPATH=1 PYTHONPATH=$(CURDIR) $(BIN)/jupyter lab --notebook-dir=notebooks

grade: $(GRADE_READY)
	@$(PY) tools/grade.py $(if $(PART),--part $(PART)) $(if $(SECTION),--section $(SECTION)) \
		$(if $(SUBMISSION),--submission "$(SUBMISSION)") $(if $(JOBS),--jobs $(JOBS)) \
		$(if $(TIME_LIMIT),--time-limit $(TIME_LIMIT))

bench: $(GRADE_READY)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(SOLUTIONS) $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build .pytest_cache
