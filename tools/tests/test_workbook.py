"""The workbook's own machinery: pins, the release generator, the graded tests' markers.

Instructor-only (tools/tests is not in the student release): `make test` runs it.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tools"))

import release  # noqa: E402  (tools/release.py)


PIP_FILES = sorted(ROOT.glob("requirements*.txt")) + [ROOT / "tools" / "requirements-instructor.txt"]


def _pins(lines):
    return sorted(line.strip().lstrip("- ").strip() for line in lines
                  if re.match(r"^\s*-?\s*[A-Za-z0-9_.\-\[\]]+==", line))


def test_environment_yml_carries_the_pins_of_every_student_requirements_file():
    files = sorted(ROOT.glob("requirements*.txt"))
    assert [f.name for f in files] == ["requirements-lab.txt", "requirements.txt"]
    requirements = sorted(pin for f in files for pin in _pins(f.read_text().splitlines()))
    environment = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert requirements, "requirements.txt pins nothing"
    assert environment == requirements


def test_no_package_is_pinned_twice_across_the_pip_files():
    names = [pin.split("==")[0].split("[")[0].lower() for f in PIP_FILES for pin in _pins(f.read_text().splitlines())]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("path", PIP_FILES, ids=lambda p: p.name)
def test_every_requirement_is_pinned_exactly(path):
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "==" in line, f"{path.name}: {line!r} is not pinned with =="


def test_solution_block_in_a_function_becomes_a_stub_that_names_the_part():
    source = '''
def add(a, b):
    """Add two numbers."""
    ### BEGIN SOLUTION part=2 section="1. Adding"
    return a + b
    ### END SOLUTION
'''
    stub = release.strip_solutions(source, "example.py")
    assert "return a + b" not in stub
    assert '"""Add two numbers."""' in stub
    assert "def add(a, b):" in stub
    namespace = {}
    exec(compile(stub, "example.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"Part 2 .*add\(\).*02_inference_api.ipynb.*1\. Adding"):
        namespace["add"](1, 2)


def test_solution_block_that_is_a_whole_body_without_docstring_becomes_a_stub():
    source = '''
class Box:
    def size(self):
        ### BEGIN SOLUTION part=4 section="2. Sizes"
        return 3
        ### END SOLUTION
'''
    stub = release.strip_solutions(source, "example.py")
    namespace = {}
    exec(compile(stub, "example.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"Box\.size\(\)"):
        namespace["Box"]().size()


def test_solution_block_at_module_level_becomes_stubs():
    source = '''
GIVEN = 1
### BEGIN SOLUTION part=1 section="2. Saving"
def _helper():
    return 2
### END SOLUTION
'''
    stub = release.strip_solutions(source, "example.py")
    assert "GIVEN = 1" in stub and "def _helper():" in stub and "return 2" not in stub


@pytest.mark.parametrize("source, problem", [
    ('### BEGIN SOLUTION part=1 section="x"\nx = 1\n', "without an END"),
    ("x = 1\n### END SOLUTION\n", "without a BEGIN"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "part=N"),
])
def test_malformed_markers_are_reported(source, problem):
    with pytest.raises(release.ReleaseError, match=problem):
        release.strip_solutions(source, "example.py")


def test_committed_student_package_matches_the_generator(capsys):
    assert release.check() == 0, capsys.readouterr().out


@pytest.mark.parametrize("path", sorted((ROOT / "tests").glob("test_part*_*.py")), ids=lambda p: p.name)
def test_graded_test_files_carry_their_part_marker(path):
    part = re.match(r"test_part(\d)_", path.name).group(1)
    tree = ast.parse(path.read_text())
    marked = any(
        isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)
        and f"part{part}" in ast.unparse(node.value)
        for node in tree.body
    )
    assert marked, f"{path.name} must set pytestmark = pytest.mark.part{part}"


MARKER_DUMP = '''
import json, os


def pytest_collection_finish(session):
    with open(os.environ["MARKER_DUMP"], "w") as handle:
        json.dump({item.nodeid: sorted({m.name for m in item.iter_markers()}) for item in session.items}, handle)
'''


@pytest.fixture(scope="module")
def graded_markers(tmp_path_factory):
    """Each graded test's node id -> the names of its markers, as pytest collects them."""
    import json
    import os
    import subprocess

    folder = tmp_path_factory.mktemp("markers")
    (folder / "marker_dump.py").write_text(MARKER_DUMP)
    out = folder / "markers.json"
    env = {**os.environ, "PYTHONPATH": str(folder), "MARKER_DUMP": str(out)}
    env.pop("DEPLOYMENT_IMPL", None)
    files = [str(p) for p in sorted((ROOT / "tests").glob("test_part*_*.py"))]
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "marker_dump",
                             "-p", "no:nbval", "-p", "no:cacheprovider", *files], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert out.exists(), result.stdout + result.stderr
    return json.loads(out.read_text())


@pytest.mark.parametrize("part", [1, 2, 3, 4, 5])
def test_every_graded_test_carries_its_part_and_exactly_one_section_marker(graded_markers, part):
    tests = {node: marks for node, marks in graded_markers.items() if f"test_part{part}_" in node}
    assert tests, f"no graded test of Part {part} was collected"
    wrong = [node for node, marks in tests.items()
             if f"part{part}" not in marks or len([m for m in marks if re.fullmatch(r"section\d+", m)]) != 1]
    assert wrong == [], f"{len(wrong)} tests of Part {part} lack their part marker or one section marker: {wrong[:5]}"


def test_tests_holds_only_graded_tests_and_tests_of_given_code():
    names = sorted(p.name for p in (ROOT / "tests").iterdir() if p.suffix == ".py")
    tests = [n for n in names if n.startswith("test_")]  # other modules are helpers the tests import
    assert [n for n in tests if not re.match(r"(test_part\d_|test_given_)\w+\.py$", n)] == []
