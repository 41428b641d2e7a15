"""A tiny synthetic workbook, for tool tests that grade quickly.

The synthetic workbook has the real ``conftest.py`` and ``pyproject.toml`` (so
``--impl`` and the part/section markers work as in the real one), a reference
package ``solutions/deployment`` with two parts, its stubs in ``deployment/``,
graded tests for Part 1 and Part 4 (Part 4 calls Part 1), and a notebook for
Part 1 with one checked output. Submissions are made from it by copying
modules of the reference or of the stubs, or by writing a module.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
VENV_PYTHON = Path(sys.executable)

REFERENCE = {
    "__init__.py": '''
        """A tiny package with two parts, for the tool tests."""
        from .alpha import double
        from .delta import quadruple
        from .given import add_one
        ''',
    "given.py": '''
        def add_one(x):
            """Given code: x + 1."""
            return x + 1
        ''',
    "alpha.py": '''
        def double(x):
            """Twice x."""
            ### BEGIN SOLUTION part=1 section="1. Doubling"
            return 2 * x
            ### END SOLUTION
        ''',
    "delta.py": '''
        from .alpha import double


        def quadruple(x):
            """Four times x, by doubling twice."""
            ### BEGIN SOLUTION part=4 section="2. Quadrupling"
            return double(double(x))
            ### END SOLUTION


        def negate(x):
            """Minus x."""
            ### BEGIN SOLUTION part=4 section="3. Negating"
            return -x
            ### END SOLUTION
        ''',
}

STUBS = {
    "alpha.py": '''
        def double(x):
            """Twice x."""
            raise NotImplementedError("Part 1 (serialization): write double(). Read notebooks/01_alpha.ipynb, "
                                      "section '1. Doubling'. Check it with: make grade PART=1 SECTION=1")
        ''',
    "delta.py": '''
        from .alpha import double


        def quadruple(x):
            """Four times x, by doubling twice."""
            raise NotImplementedError("Part 4 (the model registry): write quadruple(). Read notebooks/04_delta.ipynb, "
                                      "section '2. Quadrupling'. Check it with: make grade PART=4 SECTION=2")


        def negate(x):
            """Minus x."""
            raise NotImplementedError("Part 4 (the model registry): write negate(). Read notebooks/04_delta.ipynb, "
                                      "section '3. Negating'. Check it with: make grade PART=4 SECTION=3")
        ''',
}

TESTS = {
    "test_part1_alpha.py": '''
        import pytest

        from deployment import double

        pytestmark = pytest.mark.part1


        @pytest.mark.section1
        def test_double_of_two_is_four():
            assert double(2) == 4


        @pytest.mark.section1
        def test_double_of_zero_is_zero():
            assert double(0) == 0
        ''',
    "test_part4_delta.py": '''
        import pytest

        from deployment.delta import negate, quadruple

        pytestmark = pytest.mark.part4


        @pytest.mark.section2
        def test_quadruple_of_one_is_four():
            assert quadruple(1) == 4


        @pytest.mark.section2
        def test_quadruple_of_two_is_eight():
            assert quadruple(2) == 8


        @pytest.mark.section3
        def test_negate_flips_the_sign():
            assert negate(3) == -3
        ''',
    "test_given_tiny.py": '''
        from deployment import add_one


        def test_add_one():
            assert add_one(1) == 2
        ''',
}


def notebook(cells: list[tuple[str, str, list[str], list]]) -> dict:
    """A notebook from (cell type, source, tags, outputs) tuples; code cells count as executed."""
    made = []
    for number, (kind, source, tags, outputs) in enumerate(cells, start=1):
        cell = {"cell_type": kind, "id": f"cell-{number}", "metadata": {"tags": tags} if tags else {},
                "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=number, outputs=outputs)
        made.append(cell)
    return {"cells": made, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                       "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def stdout(text: str) -> list:
    return [{"name": "stdout", "output_type": "stream", "text": [text]}]


ALPHA_NOTEBOOK = notebook([
    ("markdown", "# Part 1: doubling\n\nA tiny notebook.", [], []),
    ("code", "from deployment import add_one\nprint(add_one(1))", [], stdout("2\n")),
    ("markdown", "## 1. Doubling\n\nTwice a number.", [], []),
    ("code", "# a comment first\nfrom deployment import double\nprint(double(2))", ["nbval-check-output"],
     stdout("4\n")),
    ("markdown", "## Questions and exercises\n\nWhat is double(3)?", [], []),
    ("markdown", "Six: 2 times 3.", ["answer"], []),
    ("code", "print(double(3))", ["answer"], stdout("6\n")),
])


def write_package(folder: Path, modules: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in modules.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())


def make_submission(where: Path, **modules: str) -> Path:
    """A checkout holding deployment/: the reference, with the named modules replaced.

    Each keyword is a module name without ``.py``; its value is ``"stub"`` (the
    student stub), ``"reference"`` or the module's source.
    """
    package = where / "deployment"
    write_package(package, REFERENCE)
    for name, choice in modules.items():
        text = STUBS[f"{name}.py"] if choice == "stub" else REFERENCE[f"{name}.py"] if choice == "reference" else choice
        (package / f"{name}.py").write_text(textwrap.dedent(text).lstrip())
    for path in package.glob("*.py"):  # the student copy holds no solution markers
        path.write_text("\n".join(line for line in path.read_text().splitlines() if "SOLUTION" not in line) + "\n")
    return where


def make_workbook(tmp_path: Path) -> Path:
    """A synthetic instructor checkout in ``tmp_path/wb``: tests, a notebook, the reference and its stubs."""
    root = tmp_path / "wb"
    root.mkdir()
    for name in ("conftest.py", "pyproject.toml", "requirements.txt", "requirements-lab.txt"):
        shutil.copy2(ROOT / name, root / name)
    write_package(root / "solutions" / "deployment", REFERENCE)
    write_package(root / "deployment", {**REFERENCE, **STUBS})
    write_package(root / "tests", TESTS)
    (root / "notebooks").mkdir()
    (root / "notebooks" / "01_alpha.ipynb").write_text(json.dumps(ALPHA_NOTEBOOK, indent=1))
    (root / "tools").mkdir()
    shutil.copy2(TOOLS / "grade.py", root / "tools" / "grade.py")
    shutil.copy2(TOOLS / "student" / "Makefile", root / "Makefile")
    return root
