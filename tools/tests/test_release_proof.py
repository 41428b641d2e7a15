"""The release proof: the student release works without the answers (`make release-proof`, last in `make test`).

The student release is built once into a temporary folder. Its contents
are checked (no solution text, no answer cell, no path of this machine,
only what a student needs); inside it, with this virtual environment
(``VENV=...``, no second install), `make grade` must exit 0 with a table of
0 points (every graded test fails on the stubs) and its Classroom workflow
must pass the linters. A copy with the reference modules over the stubs
must score 100/100 with every notebook passing (`make test` there), pass
notebook 00 and the tests of given code, and run `make demo` to the end.

So the graded tests run once against the stubs and once against the
solutions, and the notebooks once against the solutions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
VENV = Path(sys.executable).parent.parent
TOTAL = re.compile(r"^total\s+(?P<passed>\d+)/(?P<total>\d+)\s+(?P<points>[\d.]+)/(?P<maximum>\d+)\s*$", re.MULTILINE)

# Each step grades the whole workbook: far longer than the 300 s pyproject.toml allows a test.
pytestmark = pytest.mark.timeout(3600)

sys.path.append(str(TOOLS))

import student_release  # noqa: E402  (tools/student_release.py)


def clean_env() -> dict:
    """This process's environment without what the outer pytest or make set for themselves."""
    drop = ("DEPLOYMENT_IMPL", "PYTHONPATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTEST_ADDOPTS",
            "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_CURRENT_TEST")
    return {k: v for k, v in os.environ.items() if k not in drop}


def make(release: Path, *targets: str, timeout_s: float = 3600) -> subprocess.CompletedProcess:
    result = subprocess.run(["make", "--no-print-directory", f"VENV={VENV}", *targets], cwd=release,
                            env=clean_env(), capture_output=True, text=True, timeout=timeout_s)
    print(result.stdout[-8000:], result.stderr[-4000:])  # shown by pytest when the test fails
    return result


def totals(output: str) -> dict[str, float]:
    found = list(TOTAL.finditer(output))
    assert found, "no score table was printed"
    return {key: float(value) for key, value in found[-1].groupdict().items()}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """The student release, built from this checkout."""
    where = tmp_path_factory.mktemp("student-release") / "workbook"
    student_release.build(where)
    return where


@pytest.fixture(scope="module")
def solved_release(release, tmp_path_factory) -> Path:
    """A copy of the release with the reference modules copied over its stubs."""
    where = tmp_path_factory.mktemp("solved-release") / "workbook"
    shutil.copytree(release, where, symlinks=True)
    for module in sorted((ROOT / "solutions" / "deployment").rglob("*.py")):
        target = where / "deployment" / module.relative_to(ROOT / "solutions" / "deployment")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(module, target)
    return where


def text_files(folder: Path):
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            try:
                yield path, path.read_text()
            except UnicodeDecodeError:
                continue


# --------------------------------------------------------------------------- what the release holds


def test_the_release_holds_no_solution_text(release):
    holding = [str(p.relative_to(release)) for p, text in text_files(release)
               if "BEGIN SOLUTION" in text or "END SOLUTION" in text]
    assert holding == []
    assert not (release / "solutions").exists()


def test_the_release_holds_no_answer_cell(release):
    for path in sorted((release / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            assert "answer" not in cell.get("metadata", {}).get("tags", []), path.name


def test_every_answer_cell_of_the_source_is_blank_in_the_release(release):
    for source in sorted((ROOT / "notebooks").glob("*.ipynb")):
        ours = json.loads(source.read_text())["cells"]
        theirs = json.loads((release / "notebooks" / source.name).read_text())["cells"]
        assert len(ours) == len(theirs)
        for mine, shipped in zip(ours, theirs):
            if "answer" in mine.get("metadata", {}).get("tags", []):
                blank = [student_release.YOUR_ANSWER] if mine["cell_type"] == "markdown" else []
                assert (shipped["cell_type"], shipped["source"], shipped.get("outputs", [])) == \
                    (mine["cell_type"], blank, [])


def test_the_release_holds_no_path_of_this_machine(release):
    assert [str(p.relative_to(release)) for p, text in text_files(release) if str(ROOT) in text] == []
    assert student_release.check_release(release) == []


def test_the_release_holds_only_what_a_student_needs(release):
    files = {str(p.relative_to(release)) for p in release.rglob("*") if p.is_file()}
    top = {name.split("/")[0] for name in files}
    assert top == {"deployment", "tests", "notebooks", "tools", "Makefile", "README.md", "requirements.txt",
                   "requirements-lab.txt", "environment.yml", "pyproject.toml", "conftest.py", ".gitignore",
                   ".github"}
    assert {name for name in files if name.startswith(("tools/", ".github/"))} == \
        {"tools/grade.py", ".github/workflows/classroom.yml"}
    tests = {Path(name).name for name in files if name.startswith("tests/") and Path(name).name.startswith("test_")}
    assert tests and all(re.match(r"test_(part\d_|given_)\w+\.py$", name) for name in tests), tests


def test_notebook_00_in_the_release_shows_no_parts_as_written(release):
    shown = json.dumps([cell.get("outputs", []) for cell in
                        json.loads(next((release / "notebooks").glob("00_*.ipynb")).read_text())["cells"]])
    assert ": written" not in shown


def test_the_release_readme_names_the_student_commands(release):
    readme = (release / "README.md").read_text()
    for command in ("make lab", "make grade PART=1", "make grade PART=1 SECTION=2", "make test", "make demo",
                    'pytest -m "part2 and section4"'):
        assert command in readme


# --------------------------------------------------------------------------- the release at work


def test_make_grade_in_the_release_prints_a_zero_point_table_and_exits_0(release):
    result = make(release, "grade")
    assert result.returncode == 0
    table = totals(result.stdout)
    assert table["total"] > 0 and table["passed"] == 0 and table["points"] == 0.0


def test_the_release_workflow_passes_the_linters(release):
    result = subprocess.run([sys.executable, str(TOOLS / "lint_workflow.py"),
                             str(release / ".github" / "workflows" / "classroom.yml")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_with_the_solutions_make_test_in_the_release_gives_100_points_and_every_notebook_passes(solved_release):
    result = make(solved_release, "test")
    assert result.returncode == 0
    table = totals(result.stdout)
    assert (table["passed"], table["points"]) == (table["total"], table["maximum"]) == (table["total"], 100.0)


def test_with_the_solutions_notebook_00_passes(solved_release):
    notebooks = [str(p) for p in sorted((solved_release / "notebooks").glob("00_*.ipynb"))]
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval-lax",
                             "--nbval-current-env", *notebooks], cwd=solved_release, env=clean_env(),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:]


def test_with_the_solutions_the_tests_of_given_code_pass(solved_release):
    given = [str(p) for p in sorted((solved_release / "tests").glob("test_given_*.py"))]
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:nbval", "-q",
                             "-n", "2", *given], cwd=solved_release, env=clean_env(),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:]


def test_with_the_solutions_make_demo_runs_every_step_and_writes_its_plots(solved_release):
    result = make(solved_release, "demo")
    assert result.returncode == 0
    assert "Traceback" not in result.stdout + result.stderr
    assert "[FAILED]" not in result.stdout and "[ok]" in result.stdout
    assert sorted(p.name for p in (solved_release / "build" / "demo").glob("*.png")) == \
        ["ab_test.png", "canary.png", "drift.png", "latency.png"]
