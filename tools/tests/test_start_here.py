"""Notebook 00: its probes ask each part's first function; its state cells stay out of the release."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "00_start_here.ipynb"
CELLS = json.loads(NOTEBOOK.read_text())["cells"]
SOURCES = ["".join(cell["source"]) for cell in CELLS]
PROBE_CELL = next(s for c, s in zip(CELLS, SOURCES) if c["cell_type"] == "code" and "first_functions" in s)
SETUP = "from pathlib import Path\nimport deployment\npackage = Path(deployment.__file__).resolve().parent\n"


def run_probes(package_home: Path) -> list[str]:
    """The lines the probe cell prints with the package in ``package_home``, run from notebooks/ as a kernel is."""
    env = {**os.environ, "PYTHONSAFEPATH": "1", "PYTHONPATH": str(package_home)}
    result = subprocess.run([sys.executable, "-c", SETUP + PROBE_CELL], cwd=ROOT / "notebooks", env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def first_sections() -> dict[int, int]:
    """The lowest section number holding a solution block, for each part."""
    found: dict[int, int] = {}
    for path in (ROOT / "solutions" / "deployment").glob("*.py"):
        for part, section in re.findall(r'### BEGIN SOLUTION part=(\d) section="(\d+)\.', path.read_text()):
            found[int(part)] = min(found.get(int(part), 99), int(section))
    return found


def test_each_probe_asks_the_first_function_of_its_parts_notebook():
    lines = run_probes(ROOT)  # the stubs: every probe raises its part's NotImplementedError
    asked = {}
    for line in lines:
        found = re.match(r"to do: Part (\d) \(.*section '(\d+)\.", line)
        assert found, f"a probe did not reach its own part's stub: {line}"
        asked[int(found.group(1))] = int(found.group(2))
    assert asked == first_sections()


def test_a_probe_that_reaches_an_earlier_parts_stub_says_it_waits_for_that_part(tmp_path):
    shutil.copytree(ROOT / "deployment", tmp_path / "deployment", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "solutions" / "deployment" / "registry.py", tmp_path / "deployment" / "registry.py")
    part4 = next(line for line in run_probes(tmp_path) if "Part 4" in line)
    assert part4.startswith("Part 4 waits for Part 1: Part 1 (serialization): write ")


def test_with_the_reference_every_probe_answers():
    assert run_probes(ROOT / "solutions") == [f"Part {n}: its first function answers" for n in range(1, 6)]


def test_cells_that_show_the_package_state_are_cleared_in_the_release():
    for cell, source in zip(CELLS, SOURCES):
        if cell["cell_type"] == "code":
            assert "release-clear-output" in cell["metadata"].get("tags", []), source[:80]


def test_the_cell_that_runs_the_graded_tests_is_skipped_by_nbval():
    runs_tests = [c for c, s in zip(CELLS, SOURCES) if "grade.py" in s and c["cell_type"] == "code"]
    assert len(runs_tests) == 1 and "nbval-skip" in runs_tests[0]["metadata"]["tags"]


def test_the_notebook_opens_with_its_table_and_ends_with_questions_and_answers():
    assert SOURCES[0].startswith("# ") and "| section | functions you write | command that checks it |" in SOURCES[0]
    questions = next(i for i, s in enumerate(SOURCES) if s.startswith("## Questions and exercises"))
    tagged = ["answer" in c["metadata"].get("tags", []) for c in CELLS[questions:]]
    assert tagged == [False, True] * (len(tagged) // 2)  # each question, then its answer
    assert 3 <= len(tagged) // 2 <= 5
