"""Grade a deployment package: its graded tests and notebooks, part by part, as a score table.

Usage (``make grade`` runs it with PART, SECTION, SUBMISSION, JOBS and TIME_LIMIT)::

    python tools/grade.py                            # the package deployment/ in this checkout
    python tools/grade.py --part 2                   # one part: its graded tests and its notebook
    python tools/grade.py --part 2 --section 4       # one section of a part: its tests only
    python tools/grade.py --strict                   # exit 1 unless every test and notebook passes
    python tools/grade.py --submission ../alice      # another checkout (a folder holding deployment/)
    python tools/grade.py --submission submissions/  # every checkout in a folder, into build/grades.csv

The tests (``tests/test_partN_*.py``, marked ``partN`` and ``sectionK``) and
the notebooks (``notebooks/0N_*.ipynb``) always come from this checkout, so
a submission is graded against the official versions, whatever its own
copies say. Each part is worth 20 points, in proportion to its graded tests
that pass; its notebook's status is shown beside it (a notebook fails at
its first cell that raises or whose checked output differs, and the report
names that cell, its section, what differed and the command to rerun it).

Two ways of grading a part
    *Fair grading* (the instructor's, when this checkout holds the reference
    package ``solutions/deployment/`` and grades a ``--submission``): part N
    runs against a copy of the reference in which only the modules of part N
    come from the submission, so an unfinished Part 1 costs no points in
    Part 4. Which modules belong to part N is read from the
    markers that open the reference's solution blocks (``part=N``); every given module
    comes from the reference.

    *In place* (a student's ``make grade``, where no reference exists): the
    whole package is the student's. A test that fails because it reached
    another part's stub (``NotImplementedError: Part M (...)``) is counted
    apart, and the table says which part to finish first ("Part 4: 12 tests
    wait for Part 1").

A folder of submissions is graded in parallel (``--jobs``, default the
number of cores), each submission in its own process group with a time
limit (``--time-limit``): a submission that hangs is stopped and marked
"timed out", and the batch goes on. Submissions run unsandboxed, with the
grader's permissions: see the README's instructor guide for containers.
"""

from __future__ import annotations

import argparse
import collections
import csv
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = {1: "serialization", 2: "inference API", 3: "monitoring", 4: "model registry", 5: "A/B testing"}
POINTS_PER_PART = 20
STUB = re.compile(r"NotImplementedError: Part (\d) \(")
# The line that opens a solution block of part N in the reference ("[ ]" keeps this
# file, which the student release ships, free of the marker text itself).
SOLUTION_BLOCK = re.compile(r"^\s*### BEGIN[ ]SOLUTION part=(\d)", re.MULTILINE)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TEST_FILE = re.compile(r"test_part(\d)_")
NOTEBOOK_TIMEOUT_S = 300


# --------------------------------------------------------------------------- results


@dataclass
class NotebookResult:
    """How a part's notebook ran: passed, failed (where and why), missing, skipped or not run."""

    status: str = "not run"
    cell: int | None = None  # 1-based position among the notebook's code cells
    section: str = ""
    source: str = ""  # the failing cell's first line
    detail: str = ""  # a short expected/got diff, or the error's last line
    command: str = ""  # the command that reruns this notebook's check


@dataclass
class PartResult:
    """One part's graded tests: passed, failed on its own, waiting for another part's stub."""

    part: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    waiting: dict[int, int] = field(default_factory=dict)  # other part -> failing tests that reached its stub
    problems: list[str] = field(default_factory=list)  # test files that could not even be collected
    notebook: NotebookResult = field(default_factory=NotebookResult)

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped + sum(self.waiting.values())

    @property
    def points(self) -> float:
        return POINTS_PER_PART * self.passed / self.total if self.total else 0.0


@dataclass
class Grade:
    """Everything graded for one package: a result per part, and how the run ended."""

    name: str
    parts: dict[int, PartResult]
    status: str = "graded"  # or "timed out", "error"
    message: str = ""
    section: int | None = None

    @property
    def points(self) -> float:
        return sum(p.points for p in self.parts.values())

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "message": self.message, "section": self.section,
                "parts": {str(n): asdict(p) for n, p in self.parts.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "Grade":
        parts = {}
        for number, raw in data["parts"].items():
            raw = dict(raw)
            raw["waiting"] = {int(k): v for k, v in raw["waiting"].items()}
            raw.setdefault("problems", [])
            raw["notebook"] = NotebookResult(**raw["notebook"])
            parts[int(number)] = PartResult(**raw)
        return cls(data["name"], parts, data["status"], data["message"], data["section"])


# --------------------------------------------------------------------------- the workbook


@dataclass
class Workbook:
    """The checkout that holds the official tests and notebooks (and, for the instructor, the reference)."""

    root: Path

    @property
    def reference(self) -> Path | None:
        """The folder holding the reference package ``deployment/``, or None in a student release."""
        home = self.root / "solutions"
        return home if (home / "deployment" / "__init__.py").is_file() else None

    def test_files(self, part: int) -> list[Path]:
        return sorted((self.root / "tests").glob(f"test_part{part}_*.py"))

    def notebook(self, part: int) -> Path | None:
        found = sorted((self.root / "notebooks").glob(f"{part:02d}_*.ipynb"))
        return found[0] if found else None

    def part_modules(self) -> dict[int, list[str]]:
        """The reference's modules holding solution blocks of each part, read from the blocks' markers."""
        modules: dict[int, set[str]] = collections.defaultdict(set)
        for path in sorted((self.reference / "deployment").rglob("*.py")):
            for part in SOLUTION_BLOCK.findall(path.read_text()):
                modules[int(part)].add(str(path.relative_to(self.reference / "deployment")))
        return {part: sorted(names) for part, names in modules.items()}


def run_quietly(command: list[str], *, cwd: Path, env: dict | None = None, timeout_s: float | None = None,
                log: Path | None = None) -> int:
    """Run ``command`` in its own process group, its output into ``log`` (or nowhere).

    On timeout, stop the group and every descendant. Returns the exit
    status, or -9 when the time limit stopped it.
    """
    output = log.open("wb") if log is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        RUNNING.add(process)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_process_tree(process)
            return -9
        except BaseException:
            stop_process_tree(process)
            raise
        finally:
            RUNNING.discard(process)
    finally:
        if log is not None:
            output.close()


RUNNING: set[subprocess.Popen] = set()  # the runs in flight, stopped if the grader itself is stopped


def stop_process_tree(process: subprocess.Popen) -> None:
    """Kill a process started with ``start_new_session=True``, its group and any descendant that left it."""
    try:
        import psutil

        descendants = psutil.Process(process.pid).children(recursive=True)
    except Exception:  # psutil missing, or the process already gone
        descendants = []
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for child in descendants:
        try:
            child.kill()
        except Exception:
            pass
    process.wait()


def _pytest_env(extra_pythonpath: Path | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DEPLOYMENT_IMPL", "PYTEST_ADDOPTS")}
    env["PYTHONSAFEPATH"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra_pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_pythonpath)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


# --------------------------------------------------------------------------- tests


def stub_part(failure: ET.Element) -> int | None:
    """The part whose ``NotImplementedError`` a failure reached first, if any."""
    match = STUB.search(failure.get("message", "") or "") or STUB.search(failure.text or "")
    return int(match.group(1)) if match else None


def run_tests(workbook: Workbook, package_home: Path, parts: list[int], *, section: int | None = None,
              workers: int = 0, timeout_s: float | None = None) -> dict[int, PartResult]:
    """Run the graded tests of ``parts`` (one section of them, if given) against the package in ``package_home``."""
    results = {part: PartResult(part) for part in parts}
    files = [str(p) for part in parts for p in workbook.test_files(part)]
    if not files:
        return results
    selection = "(" + " or ".join(f"part{p}" for p in parts) + ")"
    if section is not None:
        selection += f" and section{section}"
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        report = Path(tmp) / "report.xml"
        command = [sys.executable, "-m", "pytest", *files, f"--impl={package_home}", "-m", selection,
                   "-p", "no:cacheprovider", "-p", "no:nbval", "-q", "--tb=short", "--color=no",
                   "--continue-on-collection-errors", f"--junitxml={report}", "-o", "junit_family=xunit2"]
        if workers > 1:
            command += ["-n", str(workers)]
        status = run_quietly(command, cwd=workbook.root, env=_pytest_env(), timeout_s=timeout_s)
        if status == -9:
            raise TimeoutError("the graded tests did not finish in time")
        if status == 5:  # no test matched the selection
            return results
        if not report.exists():
            raise RuntimeError("pytest wrote no report; run the tests by hand: " + " ".join(command))
        for case in ET.parse(report).getroot().iter("testcase"):
            collected = bool(case.get("classname"))  # a file that could not be collected has none
            match = TEST_FILE.search(case.get("classname") or case.get("name", ""))
            if not match or int(match.group(1)) not in results:
                continue
            result = results[int(match.group(1))]
            failure = next((c for c in case if c.tag in ("failure", "error")), None)
            if not collected and failure is not None:
                result.failed += 1
                result.problems.append(f"{case.get('name')} could not be collected: {_last_error(failure.text or '', 2)}")
            elif failure is not None:
                other = stub_part(failure)
                if other is not None and other != result.part:
                    result.waiting[other] = result.waiting.get(other, 0) + 1
                else:
                    result.failed += 1
            elif any(c.tag == "skipped" for c in case):
                result.skipped += 1
            else:
                result.passed += 1
    return results


# --------------------------------------------------------------------------- notebooks
#
# pytest loads this module as a plugin (``-p grade``) in the notebook runs: it
# writes the first failing cell's details to the file named in GRADE_NOTEBOOK_REPORT.


def _outputs_text(outputs) -> str:
    lines = []
    for output in outputs or []:
        if output.get("output_type") == "stream" or "text" in output and "data" not in output:
            lines.append(output.get("text", ""))
        elif "data" in output:
            lines.append(output["data"].get("text/plain", ""))
        elif output.get("output_type") == "error" or "ename" in output:
            lines.append(f"{output.get('ename')}: {output.get('evalue')}")
    return ANSI.sub("", "".join(x if isinstance(x, str) else "".join(x) for x in lines))


def pytest_runtest_makereport(item, call):
    """Record the first notebook cell that fails (nbval items carry ``cell_num`` and ``cell``)."""
    path = os.environ.get("GRADE_NOTEBOOK_REPORT")
    if not path or call.excinfo is None or not hasattr(item, "cell_num"):
        return
    if Path(path).exists() or call.excinfo.typename in ("Skipped", "XFailed"):
        return
    error = call.excinfo.value
    message = str(error)
    inner = ANSI.sub("", str(getattr(error, "inner_traceback", "") or ""))
    record = {"cell": item.cell_num, "source": item.cell.source, "message": message}
    if message == "Cell outputs differ":
        record["expected"] = _outputs_text(item.cell.outputs)
        record["got"] = _outputs_text(item.test_outputs)
    else:
        lines = [line for line in inner.strip().splitlines() if line.strip()]
        record["error"] = lines[-1].strip() if lines else message
    Path(path).write_text(json.dumps(record))


def _section_of(notebook: Path, code_cell: int) -> tuple[str, int]:
    """The heading of the section holding the notebook's ``code_cell``-th code cell (0-based), and its cell index."""
    cells = json.loads(notebook.read_text())["cells"]
    heading, seen = "", -1
    for index, cell in enumerate(cells):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            found = re.findall(r"^#{1,3}\s+(.+)$", source, re.MULTILINE)
            if found:
                heading = found[-1].strip()
        elif cell["cell_type"] == "code":
            seen += 1
            if seen == code_cell:
                return heading, index
    return heading, -1


def _last_error(output: str, status: int) -> str:
    """The line of pytest's output that says why a run failed without a failing cell."""
    lines = [ANSI.sub("", line).strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("E "):
            return line[2:].strip()
        if line.startswith(("ERROR", "FAILED")) or "Error" in line:
            return line
    return lines[-1] if lines else f"pytest exited with status {status} before a cell failed"


def short_diff(expected: str, got: str, limit: int = 12) -> str:
    """At most ``limit`` lines of a diff between a cell's stored and new output."""
    lines = list(difflib.unified_diff(expected.splitlines(), got.splitlines(), "expected", "got", lineterm="", n=1))
    lines = [line for line in lines if not line.startswith("@@")]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def run_notebook(workbook: Workbook, package_home: Path, part: int, *, rerun: str,
                 timeout_s: float | None = None) -> NotebookResult:
    """Run the part's notebook under nbval (``--nbval-lax``) against the package, in a scratch copy of notebooks/.

    The copy keeps parallel runs from writing over each other's files; the
    notebook stops at its first failing cell, whose details are returned.
    """
    notebook = workbook.notebook(part)
    if notebook is None:
        return NotebookResult("missing")
    with tempfile.TemporaryDirectory(prefix="grade-notebook-") as tmp:
        stage = Path(tmp)
        shutil.copytree(notebook.parent, stage / "notebooks",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        for name in ("conftest.py", "pyproject.toml"):
            shutil.copy2(workbook.root / name, stage / name)
        report = stage / "first-failure.json"
        env = _pytest_env(Path(__file__).resolve().parent)
        env["GRADE_NOTEBOOK_REPORT"] = str(report)
        command = [sys.executable, "-m", "pytest", f"notebooks/{notebook.name}", f"--impl={package_home}",
                   "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={NOTEBOOK_TIMEOUT_S}",
                   "-p", "grade", "-p", "no:cacheprovider", "-q", "-x", "--color=no"]
        log = stage / "pytest.log"
        status = run_quietly(command, cwd=stage, env=env, timeout_s=timeout_s, log=log)
        if status == -9:
            return NotebookResult("timed out", command=rerun)
        if status == 0:
            return NotebookResult("passed")
        result = NotebookResult("failed", command=rerun)
        if report.exists():
            record = json.loads(report.read_text())
            result.section, _ = _section_of(notebook, record["cell"])
            result.cell = record["cell"] + 1
            lines = [line for line in record["source"].splitlines() if line.strip()]
            result.source = next((line for line in lines if not line.lstrip().startswith("#")), lines[0] if lines else "")
            if "expected" in record:
                result.detail = short_diff(record["expected"], record["got"])
            else:
                result.detail = record.get("error") or record["message"]
        else:
            result.detail = _last_error(log.read_text(errors="replace"), status)
        return result


# --------------------------------------------------------------------------- one package

SHOW_PROGRESS = False  # main() sets it: a line on stderr before each stage of a long run


def progress(what: str) -> None:
    if SHOW_PROGRESS:
        print(f"grade: running {what}...", file=sys.stderr, flush=True)



def fair_package(workbook: Workbook, checkout: Path, part: int, modules: list[str], into: Path) -> Path:
    """A package home in ``into``: the reference, with the submission's modules of ``part`` copied over it."""
    target = into / f"part{part}"
    shutil.copytree(workbook.reference / "deployment", target / "deployment",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in modules:
        source = checkout / "deployment" / name
        if source.is_file():
            shutil.copy2(source, target / "deployment" / name)
        else:  # a module the submission lacks: it has written nothing of it
            (target / "deployment" / name).unlink()
    return target


def _rerun_command(workbook: Workbook, checkout: Path, part: int, fair: bool) -> str:
    if checkout == workbook.root:
        notebook = workbook.notebook(part)
        return f".venv/bin/python -m pytest --nbval-lax --nbval-current-env notebooks/{notebook.name}"
    return f"python tools/grade.py --submission {checkout} --part {part}"


def grade_checkout(workbook: Workbook, checkout: Path, parts: list[int], *, section: int | None = None,
                   notebooks: bool = True, fair: bool | None = None, workers: int = 2,
                   timeout_s: float | None = None) -> Grade:
    """Grade the package ``checkout/deployment``: fairly part by part when a reference exists, else in place."""
    if fair is None:
        fair = workbook.reference is not None and checkout != workbook.root
    if fair and workbook.reference is None:
        raise SystemExit("grade: fair grading needs the reference package solutions/deployment/.")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def left() -> float | None:
        return None if deadline is None else max(1.0, deadline - time.monotonic())

    name = "deployment/" if checkout == workbook.root else str(checkout)
    run_books = notebooks and section is None
    with tempfile.TemporaryDirectory(prefix="grade-fair-") as tmp:
        if fair:
            modules = workbook.part_modules()
            homes = {part: fair_package(workbook, checkout, part, modules.get(part, []), Path(tmp)) for part in parts}
            results = {}
            for part in parts:
                progress(f"the graded tests of Part {part}" + (f", section {section}" if section else ""))
                results[part] = run_tests(workbook, homes[part], [part], section=section, workers=workers,
                                          timeout_s=left())[part]
        else:
            homes = {part: checkout for part in parts}
            progress("the graded tests of " + ("Part " if len(parts) == 1 else "Parts ")
                     + ", ".join(map(str, parts)) + (f", section {section}" if section else ""))
            results = run_tests(workbook, checkout, parts, section=section, workers=workers, timeout_s=left())
        if run_books:
            progress("the notebooks of " + ("Part " if len(parts) == 1 else "Parts ") + ", ".join(map(str, parts))
                     + f", {max(1, workers)} at a time")
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                runs = {part: pool.submit(run_notebook, workbook, homes[part], part, timeout_s=left(),
                                          rerun=_rerun_command(workbook, checkout, part, fair)) for part in parts}
                for part, run in runs.items():
                    results[part].notebook = run.result()
    return Grade(name, results, section=section)


# --------------------------------------------------------------------------- reports


def _wait(count: int) -> str:
    return "waits" if count == 1 else "wait"


def format_table(grade: Grade) -> str:
    """The score table of one package, then why notebooks failed and which parts wait for others."""
    what = f"section {grade.section} of " if grade.section is not None else ""
    lines = [f"Grading {what}{grade.name}"]
    if grade.status != "graded":
        lines.append(f"  {grade.status}: {grade.message}")
    lines.append(f"{'part':<6}{'topic':<16}{'tests':>9}{'points':>10}  {'waiting for another part':<26}notebook")
    for result in grade.parts.values():
        waiting = ", ".join(f"{n} {_wait(n)} for Part {m}" for m, n in sorted(result.waiting.items())) or "-"
        notebook = result.notebook.status
        if result.notebook.status == "failed" and result.notebook.cell:
            notebook += f" at code cell {result.notebook.cell}"
        lines.append(f"{result.part:<6}{PARTS[result.part]:<16}{f'{result.passed}/{result.total}':>9}"
                     f"{f'{result.points:.1f}/{POINTS_PER_PART}':>10}  {waiting:<26}{notebook}")
    passed = sum(r.passed for r in grade.parts.values())
    total = sum(r.total for r in grade.parts.values())
    lines.append(f"{'total':<22}{f'{passed}/{total}':>9}"
                 f"{f'{grade.points:.1f}/{POINTS_PER_PART * len(grade.parts)}':>10}")
    if total == 0 and grade.status == "graded":
        marker = " and ".join(f"part{p}" for p in grade.parts) + (f" and section{grade.section}" if grade.section else "")
        lines.append(f"No graded test is marked {marker}.")
    for result in grade.parts.values():
        for problem in result.problems:
            lines.append(f"Part {result.part}: {problem}")
        for other, count in sorted(result.waiting.items()):
            lines.append(f"Part {result.part}: {count} test{'s' if count != 1 else ''} {_wait(count)} for Part {other}: "
                         f"finish Part {other} first (make grade PART={other}).")
        skipped = result.skipped
        if skipped:
            lines.append(f"Part {result.part}: {skipped} test{'s' if skipped != 1 else ''} skipped (a skipped test earns no points).")
    for result in grade.parts.values():
        book = result.notebook
        if book.status == "failed":
            where = f"code cell {book.cell}" if book.cell else "a cell"
            section = f", section '{book.section}'" if book.section else ""
            lines.append(f"\nNotebook of Part {result.part} failed at {where}{section}:")
            if book.source:
                lines.append(f"    {book.source}")
            lines.extend("  " + line for line in book.detail.splitlines())
            lines.append(f"  Rerun its check: {book.command}")
        elif book.status == "timed out":
            lines.append(f"\nNotebook of Part {result.part} did not finish in time. Rerun its check: {book.command}")
    return "\n".join(lines)


def write_csv(path: Path, grades: list[Grade], parts: list[int]) -> None:
    """One row per submission: points per part, the total, each notebook's status, how the run ended."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission"] + [f"part{p}_points" for p in parts] + ["total"]
                        + [f"notebook{p:02d}" for p in parts] + ["status"])
        for grade in grades:
            writer.writerow([Path(grade.name).name] + [f"{grade.parts[p].points:.1f}" for p in parts]
                            + [f"{grade.points:.1f}"] + [grade.parts[p].notebook.status for p in parts]
                            + [grade.status])


def status_lines(grade: Grade) -> list[str]:
    """One line per part for notebook 00: written only when every graded test passes."""
    lines = []
    for result in grade.parts.values():
        label = f"Part {result.part} ({PARTS[result.part]})"
        waits = "".join(f"; {n} {_wait(n)} for Part {m}" for m, n in sorted(result.waiting.items()))
        if result.total and result.passed == result.total:
            lines.append(f"{label}: written, all {result.total} graded tests pass")
        elif result.passed:
            lines.append(f"{label}: started, {result.passed} of {result.total} graded tests pass{waits}")
        else:
            lines.append(f"{label}: to do, none of its {result.total} graded tests passes yet{waits}")
    return lines


# --------------------------------------------------------------------------- many submissions


def find_submissions(path: Path) -> list[Path]:
    """The checkout itself if it holds deployment/, else every sub-folder that does."""
    if (path / "deployment" / "__init__.py").is_file():
        return [path]
    if not path.is_dir():
        raise SystemExit(f"grade: {path} is not a folder.")
    found = sorted(p for p in path.iterdir() if (p / "deployment" / "__init__.py").is_file())
    if not found:
        raise SystemExit(f"grade: {path} holds no deployment/ package, nor do its sub-folders.")
    return found


def grade_in_subprocess(workbook: Workbook, checkout: Path, args: argparse.Namespace, time_limit_s: float) -> Grade:
    """Grade one submission in a child process (its own process group), stopped at the time limit."""
    parts = args.part or list(PARTS)
    with tempfile.TemporaryDirectory(prefix="grade-one-") as tmp:
        out = Path(tmp) / "grade.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--root", str(workbook.root),
                   "--submission", str(checkout), "--json", str(out), "--workers", "1", "--quiet"]
        command += [f"--part={p}" for p in parts]
        if args.section is not None:
            command.append(f"--section={args.section}")
        if args.no_notebooks:
            command.append("--no-notebooks")
        status = run_quietly(command, cwd=workbook.root, timeout_s=time_limit_s)
        if status == 0 and out.exists():
            return Grade.from_json(json.loads(out.read_text()))
    empty = {p: PartResult(p) for p in parts}
    if status == -9:
        return Grade(str(checkout), empty, "timed out", f"stopped after the time limit of {time_limit_s:.0f} s")
    return Grade(str(checkout), empty, "error", f"the grader exited with status {status}")


def grade_folder(workbook: Workbook, submissions: list[Path], args: argparse.Namespace) -> list[Grade]:
    """Grade submissions in parallel, with a progress bar; the order of the result follows ``submissions``."""
    from tqdm import tqdm

    grades: dict[Path, Grade] = {}
    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        with tqdm(total=len(submissions), unit="submission", file=sys.stderr, dynamic_ncols=True) as bar:
            futures = {pool.submit(grade_in_subprocess, workbook, s, args, args.time_limit): s for s in submissions}
            for future in as_completed(futures):
                grades[futures[future]] = future.result()
                bar.update()
    except BaseException:  # Ctrl-C or SIGTERM: stop every submission in flight, start no other
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list(RUNNING):
            stop_process_tree(process)
        raise
    pool.shutdown()
    return [grades[s] for s in submissions]


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", type=int, action="append", choices=sorted(PARTS),
                        help="grade this part (repeat for several; default: every part)")
    parser.add_argument("--section", type=int, help="only the tests of this notebook section (no notebook)")
    parser.add_argument("--submission", type=Path, help="a checkout, or a folder of checkouts")
    parser.add_argument("--no-notebooks", action="store_true", help="skip the notebooks")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless every graded test and notebook passes")
    parser.add_argument("--status", action="store_true", help="one line per part: written, started or to do")
    parser.add_argument("--in-place", action="store_true", help="grade a submission as a whole, even with a reference")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    parser.add_argument("--time-limit", type=float, default=1800.0, help="seconds allowed for each submission")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers for each test run")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that the test runs this grader started are stopped with it."""
    def handler(number, frame):
        raise SystemExit(128 + number)

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    global SHOW_PROGRESS
    args = parse_args(argv)
    _stop_on_sigterm()
    SHOW_PROGRESS = not args.quiet and not args.status
    workbook = Workbook(args.root.resolve())
    parts = sorted(set(args.part or PARTS))
    notebooks = not args.no_notebooks and not args.status
    if args.section is not None:
        notebooks = False

    if args.submission is not None:
        submissions = find_submissions(args.submission.resolve())
        one_checkout = submissions == [args.submission.resolve()]
    else:
        submissions, one_checkout = [workbook.root], True
    fair = False if args.in_place else None

    if not one_checkout:
        grades = grade_folder(workbook, submissions, args)
        out = workbook.root / "build" / "grades.csv"
        write_csv(out, grades, parts)
        reports = workbook.root / "build" / "grades"
        reports.mkdir(parents=True, exist_ok=True)
        for grade in grades:
            (reports / f"{Path(grade.name).name}.txt").write_text(format_table(grade) + "\n")
        width = max(len(Path(g.name).name) for g in grades)
        print(f"{'submission':<{width}}  " + "".join(f"{'part ' + str(p):>9}" for p in parts) + f"{'total':>9}  status")
        for grade in grades:
            print(f"{Path(grade.name).name:<{width}}  " + "".join(f"{grade.parts[p].points:>9.1f}" for p in parts)
                  + f"{grade.points:>9.1f}  {grade.status}")
        print(f"\nWrote build/grades.csv ({len(grades)} submissions) and a report per submission in build/grades/.")
        return 0

    checkout = submissions[0]
    try:
        grade = grade_checkout(workbook, checkout, parts, section=args.section, notebooks=notebooks,
                               fair=fair, workers=args.workers, timeout_s=args.time_limit)
    except TimeoutError:
        grade = Grade(str(checkout), {p: PartResult(p) for p in parts}, "timed out",
                      f"stopped after the time limit of {args.time_limit:.0f} s")
    except RuntimeError as error:
        grade = Grade(str(checkout), {p: PartResult(p) for p in parts}, "error", str(error))
    if args.json:
        args.json.write_text(json.dumps(grade.to_json(), indent=1))
    if args.status:
        print("\n".join(status_lines(grade)))
    elif not args.quiet:
        print(format_table(grade))
    if args.strict:
        complete = all(r.passed == r.total for r in grade.parts.values()) and any(r.total for r in grade.parts.values())
        books = all(r.notebook.status == "passed" for r in grade.parts.values()) if notebooks else True
        return 0 if complete and books and grade.status == "graded" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
