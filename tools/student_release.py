"""Write the standalone student repository: the workbook without its answers.

Usage (``make student-release DEST=path [FORCE=1]`` runs it)::

    python tools/student_release.py DEST            # DEST must be empty or absent
    python tools/student_release.py DEST --force    # replace what DEST holds (a .git folder is kept)

The release holds what a student needs and nothing more:

* ``deployment/``: the student package, as committed (``tools/release.py
  --check`` must pass first, so it is what the generator makes from the
  solutions);
* ``tests/``: the graded tests and the tests of given code;
* ``notebooks/``: every cell tagged ``answer`` replaced by a blank cell of the
  same type (a "*Your answer:*" markdown cell, an empty code cell), and the
  outputs of cells tagged ``release-clear-output`` removed (notebook 00's
  "which parts are written" table shows the student's state once run, never
  the instructor's);
* ``tools/grade.py``, the student ``Makefile``, ``README.md`` and GitHub
  Classroom workflow (templates in ``tools/student/``), the pins
  (``requirements*.txt``, ``environment.yml``), ``pyproject.toml``,
  ``conftest.py`` and ``.gitignore``.

No ``solutions/``, no release generator, no benchmarks. The build fails
(and removes what it wrote) if any file still holds solution markers, an
``answer`` cell, or a path of the machine it was built on.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "student"

# source (relative to ROOT) -> destination (relative to the release)
FILES = {
    "tools/grade.py": "tools/grade.py",
    "tools/student/Makefile": "Makefile",
    "tools/student/README.md": "README.md",
    "tools/student/classroom.yml": ".github/workflows/classroom.yml",
    "requirements.txt": "requirements.txt",
    "requirements-lab.txt": "requirements-lab.txt",
    "environment.yml": "environment.yml",
    "pyproject.toml": "pyproject.toml",
    "conftest.py": "conftest.py",
    ".gitignore": ".gitignore",
}
FOLDERS = ("deployment", "tests", "notebooks")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache")

ANSWER_TAG = "answer"
CLEAR_TAG = "release-clear-output"
YOUR_ANSWER = "*Your answer:*"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
# Absolute paths that name somebody's machine, in stored notebook outputs.
MACHINE_PATH = re.compile(r"(?<![\w.~])(/home/|/Users/|/root/|/tmp/|/work/|/private/|/var/folders/|/mnt/)|[A-Z]:\\Users\\")


class ReleaseProblem(Exception):
    """The release would hold something a student must not receive."""


def blank_answers(notebook: dict) -> int:
    """Replace each cell tagged ``answer`` by a blank cell of its type; clear ``release-clear-output`` cells.

    Returns the number of answer cells replaced.
    """
    replaced = 0
    for index, cell in enumerate(notebook["cells"]):
        tags = cell.get("metadata", {}).get("tags", [])
        if ANSWER_TAG in tags:
            replaced += 1
            if cell["cell_type"] == "markdown":
                notebook["cells"][index] = {"cell_type": "markdown", "metadata": {}, "source": [YOUR_ANSWER]}
            else:
                notebook["cells"][index] = {"cell_type": "code", "execution_count": None, "metadata": {},
                                            "outputs": [], "source": []}
            if "id" in cell:
                notebook["cells"][index]["id"] = cell["id"]
        elif CLEAR_TAG in tags and cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return replaced


def write_notebook(source: Path, destination: Path) -> None:
    notebook = json.loads(source.read_text())
    blank_answers(notebook)
    destination.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def check_release(dest: Path) -> list[str]:
    """Every reason the release in ``dest`` must not be handed out (empty when it is fine)."""
    problems = []
    if (dest / "solutions").exists():
        problems.append("solutions/ is in the release.")
    if (dest / "tools" / "release.py").exists():
        problems.append("the release generator tools/release.py is in the release.")
    forbidden = {str(ROOT), str(Path.home())} - {"/", ""}
    for path in sorted(p for p in dest.rglob("*") if p.is_file() and ".git" not in p.relative_to(dest).parts):
        name = path.relative_to(dest)
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for marker in SOLUTION_MARKERS:
            if marker in text:
                problems.append(f"{name} holds solution text ({marker}).")
        for folder in forbidden:
            if re.search(re.escape(folder) + r"(?![\w-])", text):
                problems.append(f"{name} holds a path of the machine that built it ({folder}).")
        if path.suffix == ".ipynb":
            problems.extend(_notebook_problems(name, json.loads(text)))
    return problems


def _notebook_problems(name: Path, notebook: dict) -> list[str]:
    problems = []
    for number, cell in enumerate(notebook["cells"], start=1):
        if ANSWER_TAG in cell.get("metadata", {}).get("tags", []):
            problems.append(f"{name}: cell {number} is still an answer cell.")
        if cell["cell_type"] != "code":
            continue
        shown = json.dumps(cell.get("outputs", []))
        found = MACHINE_PATH.search(shown.replace("\\\\", "\\"))
        if found:
            problems.append(f"{name}: the output of cell {number} shows a machine path ({found.group(0)}...).")
        if name.name.startswith("00_") and re.search(r": written\b", shown):
            problems.append(f"{name}: cell {number} shows parts as written; tag it {CLEAR_TAG}.")
    return problems


def prepare_destination(dest: Path, force: bool) -> None:
    """Make ``dest`` an empty folder; refuse a non-empty one unless ``force`` (which keeps its .git)."""
    if dest.exists() and not dest.is_dir():
        raise ReleaseProblem(f"{dest} exists and is not a folder.")
    entries = [p for p in dest.iterdir()] if dest.exists() else []
    if entries and not force:
        raise ReleaseProblem(f"{dest} is not empty; choose an empty folder or add FORCE=1 to replace its contents.")
    where = dest.resolve()
    if where == ROOT or where in ROOT.parents or (ROOT in where.parents and ROOT / "build" not in where.parents):
        raise ReleaseProblem(f"{dest} would overwrite the instructor's checkout; choose a folder outside it "
                             "(or under build/).")
    for entry in entries:
        if entry.name == ".git":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    dest.mkdir(parents=True, exist_ok=True)


def build(dest: Path, *, force: bool = False) -> None:
    """Write the student release into ``dest`` and check it; remove it again if the check fails."""
    check = subprocess.run([sys.executable, str(ROOT / "tools" / "release.py"), "--check"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise ReleaseProblem("deployment/ is not what tools/release.py makes from the solutions; "
                             "run `make release` first.\n" + check.stdout + check.stderr)
    prepare_destination(dest, force)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, dest / folder, ignore=IGNORED)
    for notebook in sorted((dest / "notebooks").glob("*.ipynb")):
        write_notebook(notebook, notebook)
    for source, target in FILES.items():
        (dest / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / source, dest / target)
    problems = check_release(dest)
    if problems:
        for entry in dest.iterdir():
            if entry.name != ".git":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        raise ReleaseProblem("the release is not fit to hand out:\n  " + "\n  ".join(problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="the folder to write the student repository into")
    parser.add_argument("--force", action="store_true", help="replace the contents of a non-empty folder")
    args = parser.parse_args(argv)
    try:
        build(args.dest, force=args.force)
    except ReleaseProblem as problem:
        print(f"student-release: {problem}", file=sys.stderr)
        return 1
    print(f"student-release: wrote the student repository to {args.dest}.")
    print("Next: cd there, `git init && git add -A && git commit -m 'Workbook'`, and push it as the "
          "GitHub Classroom template repository.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
