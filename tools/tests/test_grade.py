"""tools/grade.py: fair grading, waiting parts, sections, notebook failures, folders of submissions.

Each test grades the tiny synthetic workbook of conftest.py, so it runs in seconds.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from synthetic import TOOLS, make_submission

sys.path.append(str(TOOLS))

import grade  # noqa: E402  (tools/grade.py)


def running_tests_of(workbook: Path) -> list[psutil.Process]:
    """The pytest processes running this workbook's tests (their command lines name its test files)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "pytest" in command and str(workbook / "tests") in command:
            found.append(process)
    return found


def run_grade(workbook: Path, *args: str, timeout_s: float = 300) -> tuple[subprocess.CompletedProcess, dict]:
    """Run tools/grade.py on the synthetic workbook; its printed output and its --json results."""
    out = workbook.parent / "grade.json"
    result = subprocess.run([sys.executable, str(TOOLS / "grade.py"), "--root", str(workbook), "--workers", "1",
                             "--json", str(out), *args], capture_output=True, text=True, timeout=timeout_s)
    return result, json.loads(out.read_text()) if out.exists() else {}


def test_part_modules_come_from_the_solution_markers(workbook):
    assert grade.Workbook(workbook).part_modules() == {1: ["alpha.py"], 4: ["delta.py"]}


def test_fair_grading_gives_full_part_4_points_to_a_submission_with_part_1_stubbed(workbook, tmp_path):
    submission = make_submission(tmp_path / "alice", alpha="stub", delta="reference")
    result, graded = run_grade(workbook, "--submission", str(submission), "--no-notebooks")
    assert result.returncode == 0, result.stderr
    part4 = graded["parts"]["4"]
    assert (part4["passed"], part4["failed"], part4["waiting"]) == (3, 0, {})
    assert graded["parts"]["1"]["passed"] == 0
    assert "20.0/20" in result.stdout


def test_fair_grading_takes_given_modules_from_the_reference(workbook, tmp_path):
    cheating_init = ('"""Given code, edited to answer for Part 4."""\n'
                     "from . import delta\n"
                     "delta.quadruple = lambda x: 4 * x\n"
                     "delta.negate = lambda x: -x\n")
    submission = make_submission(tmp_path / "mallory", delta="stub", __init__=cheating_init)
    result, graded = run_grade(workbook, "--submission", str(submission), "--no-notebooks", "--part", "4")
    assert graded["parts"]["4"]["passed"] == 0  # its __init__.py is given code: the reference's is used


def test_in_place_grading_counts_tests_that_wait_for_another_part(workbook, tmp_path):
    submission = make_submission(tmp_path / "bob", alpha="stub", delta="reference")
    result, graded = run_grade(workbook, "--submission", str(submission), "--in-place", "--no-notebooks")
    assert graded["parts"]["4"]["waiting"] == {"1": 2}  # the two quadruple tests reach Part 1's stub
    assert graded["parts"]["4"]["passed"] == 1  # negate needs nothing of Part 1
    assert "Part 4: 2 tests wait for Part 1" in result.stdout


def test_a_students_grade_without_a_reference_names_the_part_to_finish_first(workbook):
    shutil.rmtree(workbook / "solutions")
    make_submission(workbook, delta="reference", alpha="stub")  # the student wrote Part 4 only
    result, graded = run_grade(workbook, "--no-notebooks")
    assert "Part 4: 2 tests wait for Part 1: finish Part 1 first (make grade PART=1)." in result.stdout
    assert graded["parts"]["1"]["failed"] == 2  # Part 1's own stub is Part 1's failure, not a wait


def test_a_test_file_that_cannot_be_collected_is_reported_and_the_other_parts_still_run(workbook, tmp_path):
    submission = make_submission(tmp_path / "frank", delta='def quadruple(x):\n    """No negate."""\n    return 4 * x\n')
    result, graded = run_grade(workbook, "--submission", str(submission), "--in-place", "--no-notebooks")
    assert graded["parts"]["1"]["passed"] == 2
    assert graded["parts"]["4"]["passed"] == 0
    assert ("Part 4: tests.test_part4_delta could not be collected: ImportError: cannot import name 'negate'"
            in result.stdout)


def test_make_grade_part_and_section_runs_only_that_sections_tests(workbook):
    result = subprocess.run(["make", "--no-print-directory", f"VENV={Path(sys.executable).parent.parent}",
                             "GRADE_READY=", "grade", "PART=4", "SECTION=2"],
                            cwd=workbook, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Grading section 2 of deployment/" in result.stdout
    assert re.search(r"^total\s+(\d+/\d+)", result.stdout, re.MULTILINE).group(1) == "0/2"  # not negate's test
    assert "not run" in result.stdout  # a section runs no notebook


def test_strict_grading_exits_1_until_every_test_passes(workbook, tmp_path):
    stubbed, _ = run_grade(workbook, "--strict", "--no-notebooks")
    done = make_submission(tmp_path / "carol")
    complete, _ = run_grade(workbook, "--strict", "--no-notebooks", "--submission", str(done))
    assert (stubbed.returncode, complete.returncode) == (1, 0)


def test_a_notebook_output_that_differs_names_its_cell_its_section_and_the_diff(workbook, tmp_path):
    triple = 'def double(x):\n    """Wrong on purpose."""\n    return 3 * x\n'
    submission = make_submission(tmp_path / "dave", alpha=triple)
    result, graded = run_grade(workbook, "--submission", str(submission), "--part", "1")
    book = graded["parts"]["1"]["notebook"]
    assert (book["status"], book["cell"], book["section"]) == ("failed", 2, "1. Doubling")
    assert book["source"] == "from deployment import double"  # the first line that is not a comment
    assert "-4" in book["detail"] and "+6" in book["detail"]
    assert "Notebook of Part 1 failed at code cell 2, section '1. Doubling':" in result.stdout
    assert f"Rerun its check: python tools/grade.py --submission {submission} --part 1" in result.stdout


def test_a_notebook_cell_that_raises_shows_the_errors_last_line(workbook):
    result, graded = run_grade(workbook, "--part", "1")  # the stubs of the workbook itself
    book = graded["parts"]["1"]["notebook"]
    assert (book["status"], book["cell"], book["section"]) == ("failed", 2, "1. Doubling")
    assert book["detail"].startswith("NotImplementedError: Part 1 (serialization): write double().")
    assert ("Rerun its check: .venv/bin/python -m pytest --nbval-lax --nbval-current-env "
            "notebooks/01_alpha.ipynb") in result.stdout


def test_a_notebook_that_passes_is_reported_passed(workbook, tmp_path):
    submission = make_submission(tmp_path / "erin")
    _, graded = run_grade(workbook, "--submission", str(submission), "--part", "1")
    assert graded["parts"]["1"]["notebook"]["status"] == "passed"


def test_a_hanging_submission_is_stopped_at_its_time_limit_and_the_batch_goes_on(workbook, tmp_path):
    folder = tmp_path / "class"
    make_submission(folder / "a_hangs", alpha='def double(x):\n    """Never returns."""\n    while True:\n        pass\n')
    make_submission(folder / "b_done")
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(TOOLS / "grade.py"), "--root", str(workbook),
                             "--submission", str(folder), "--part", "1", "--no-notebooks",
                             "--jobs", "2", "--time-limit", "20"], capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    rows = {row["submission"]: row for row in csv.DictReader((workbook / "build" / "grades.csv").open())}
    assert (rows["a_hangs"]["status"], rows["a_hangs"]["part1_points"]) == ("timed out", "0.0")
    assert (rows["b_done"]["status"], rows["b_done"]["part1_points"]) == ("graded", "20.0")
    assert elapsed < 120
    assert running_tests_of(workbook) == [], "a test run of the stopped submission is still running"


def test_the_csv_has_a_row_per_submission_and_a_column_per_part_and_notebook(workbook, tmp_path):
    folder = tmp_path / "class"
    make_submission(folder / "one")
    make_submission(folder / "two", alpha="stub")
    result = subprocess.run([sys.executable, str(TOOLS / "grade.py"), "--root", str(workbook),
                             "--submission", str(folder), "--jobs", "2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with (workbook / "build" / "grades.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["submission"] + [f"part{p}_points" for p in range(1, 6)] + ["total"] + \
        [f"notebook{p:02d}" for p in range(1, 6)] + ["status"]
    assert [row[0] for row in rows[1:]] == ["one", "two"]
    assert rows[1][1:7] == ["20.0", "0.0", "0.0", "20.0", "0.0", "40.0"]
    assert rows[1][7] == "passed" and rows[2][7] == "failed"
    assert (workbook / "build" / "grades" / "two.txt").read_text().startswith("Grading ")


def test_status_says_written_only_when_every_graded_test_passes(workbook, tmp_path):
    half = make_submission(tmp_path / "half", alpha="stub", delta="reference")
    result, _ = run_grade(workbook, "--status", "--submission", str(half), "--in-place", "--part", "1", "--part", "4")
    assert result.stdout.splitlines() == [
        "Part 1 (serialization): to do, none of its 2 graded tests passes yet",
        "Part 4 (model registry): started, 1 of 3 graded tests pass; 2 wait for Part 1",
    ]
    done = make_submission(tmp_path / "done")
    result, _ = run_grade(workbook, "--status", "--submission", str(done), "--in-place", "--part", "1")
    assert result.stdout.splitlines() == ["Part 1 (serialization): written, all 2 graded tests pass"]


def test_short_diff_keeps_only_the_lines_that_changed_and_their_neighbours():
    expected = "\n".join(f"line {i}" for i in range(40))
    got = expected.replace("line 20", "line twenty")
    diff = grade.short_diff(expected, got)
    assert diff.splitlines() == ["--- expected", "+++ got", " line 19", "-line 20", "+line twenty", " line 21"]


def test_stopping_the_grader_stops_the_submissions_it_is_running(workbook, tmp_path):
    folder = tmp_path / "class"
    make_submission(folder / "g_hangs", alpha='def double(x):\n    """Never returns."""\n    while True:\n        pass\n')
    grader = subprocess.Popen([sys.executable, str(TOOLS / "grade.py"), "--root", str(workbook),
                               "--submission", str(folder), "--part", "1", "--no-notebooks", "--jobs", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    deadline = time.monotonic() + 120
    while not running_tests_of(workbook) and time.monotonic() < deadline:  # until the submission's tests have started
        time.sleep(0.2)
    assert running_tests_of(workbook), "the submission's tests never started"
    grader.terminate()
    assert grader.wait(timeout=60) != 0
    psutil.wait_procs(running_tests_of(workbook), timeout=30)
    assert running_tests_of(workbook) == []
