"""tools/student_release.py: what it refuses, what it blanks, what it keeps out of the release."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from synthetic import ALPHA_NOTEBOOK

sys.path.append(str(Path(__file__).resolve().parents[1]))

import student_release  # noqa: E402  (tools/student_release.py)


def test_answer_cells_become_blank_cells_of_the_same_type():
    notebook = json.loads(json.dumps(ALPHA_NOTEBOOK))
    assert student_release.blank_answers(notebook) == 2
    markdown, code = notebook["cells"][-2:]
    assert (markdown["cell_type"], markdown["source"], markdown["metadata"]) == ("markdown", ["*Your answer:*"], {})
    assert (code["cell_type"], code["source"], code["outputs"], code["execution_count"]) == ("code", [], [], None)
    assert "Six" not in json.dumps(notebook) and "print(double(3))" not in json.dumps(notebook)


def test_cells_tagged_release_clear_output_lose_their_outputs_only():
    notebook = {"cells": [{"cell_type": "code", "execution_count": 3, "metadata": {"tags": ["release-clear-output"]},
                           "outputs": [{"output_type": "stream", "name": "stdout", "text": ["Part 1: written\n"]}],
                           "source": ["print(status)"]}]}
    student_release.blank_answers(notebook)
    cell = notebook["cells"][0]
    assert (cell["outputs"], cell["execution_count"], cell["source"]) == ([], None, ["print(status)"])


def test_a_non_empty_destination_is_refused_without_force(tmp_path):
    (tmp_path / "homework.txt").write_text("mine")
    with pytest.raises(student_release.ReleaseProblem, match="not empty; choose an empty folder or add FORCE=1"):
        student_release.prepare_destination(tmp_path, force=False)
    assert (tmp_path / "homework.txt").read_text() == "mine"


def test_force_empties_the_destination_but_keeps_its_git_folder(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "file.py").write_text("x = 1\n")
    student_release.prepare_destination(tmp_path, force=True)
    assert [p.name for p in tmp_path.iterdir()] == [".git"]
    assert (tmp_path / ".git" / "HEAD").exists()


@pytest.mark.parametrize("where", [lambda root: root, lambda root: root.parent, lambda root: root / "tests"],
                         ids=["the-checkout", "its-parent", "a-folder-of-it"])
def test_a_destination_that_would_overwrite_the_checkout_is_refused(where):
    with pytest.raises(student_release.ReleaseProblem, match="would overwrite the instructor's checkout"):
        student_release.prepare_destination(where(student_release.ROOT), force=True)


def test_the_check_finds_solution_text_answer_cells_and_machine_paths(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "module.py").write_text("### BEGIN SOLUTION part=1 section=\"1. x\"\n")
    (tmp_path / "notes.md").write_text(f"built in {student_release.ROOT}/build\n")
    printed = {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": [],
               "outputs": [{"output_type": "stream", "name": "stdout", "text": ["saved to /home/ada/models\n"]}]}
    answer = {"cell_type": "markdown", "metadata": {"tags": ["answer"]}, "source": ["42"]}
    (tmp_path / "notebooks" / "01_x.ipynb").write_text(json.dumps({"cells": [printed, answer]}))
    problems = "\n".join(student_release.check_release(tmp_path))
    assert "module.py holds solution text" in problems
    assert "notes.md holds a path of the machine that built it" in problems
    assert "the output of cell 1 shows a machine path (/home/" in problems
    assert "cell 2 is still an answer cell" in problems


def test_the_check_accepts_relative_paths_in_outputs(tmp_path):
    (tmp_path / "notebooks").mkdir()
    printed = {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": [],
               "outputs": [{"output_type": "stream", "name": "stdout",
                            "text": ["saved to models/cancer.json; refused ../../etc/passwd\n"]}]}
    (tmp_path / "notebooks" / "01_x.ipynb").write_text(json.dumps({"cells": [printed]}))
    assert student_release.check_release(tmp_path) == []
