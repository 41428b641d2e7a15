"""Prove that the student release works without the answers: the last step of the instructor's ``make test``.

Usage::

    python tools/release_proof.py --venv .venv   # reuse this virtual environment inside the release

In a temporary folder it

1. builds the student release (``tools/student_release.py``);
2. runs the release's own ``make grade``: it must exit 0 with a table of
   0 points, so every graded test fails on the stubs (a test that passes on
   a stub would award free points);
3. lints the release's GitHub Classroom workflow (``tools/lint_workflow.py``);
4. copies the reference modules over the release's stubs and runs the
   release's ``make test``: 100/100 with every notebook passing; then
   notebook 00 and the tests of given code against the same package, and
   ``make demo``, which must complete.

So the graded tests run once against the stubs and once against the
solutions, and the notebooks once against the solutions. Each step prints
what it ran and how long it took.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOTAL = re.compile(r"^total\s+(\d+)/(\d+)\s+([\d.]+)/(\d+)\s*$", re.MULTILINE)


class ProofFailed(Exception):
    """A step of the proof did not give what it must."""


def run(command: list[str], cwd: Path, title: str, timeout_s: float = 1800) -> subprocess.CompletedProcess:
    """Run one step, print its title and duration; its output is returned (and printed if it fails)."""
    started = time.monotonic()
    print(f"release-proof: {title} ...", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DEPLOYMENT_IMPL", "PYTHONPATH", "MAKEFLAGS", "MFLAGS",
                                                           "MAKELEVEL")}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    print(f"release-proof: {title}: exit status {result.returncode} in {time.monotonic() - started:.0f} s", flush=True)
    return result


def fail(step: str, result: subprocess.CompletedProcess, why: str) -> ProofFailed:
    return ProofFailed(f"{step}: {why}\n--- its output ---\n{result.stdout[-6000:]}{result.stderr[-3000:]}")


def totals(output: str) -> tuple[int, int, float, int]:
    """(tests passed, tests, points, maximum) from a score table's total line."""
    found = TOTAL.findall(output)
    if not found:
        raise ValueError("no total line")
    passed, total, points, maximum = found[-1]
    return int(passed), int(total), float(points), int(maximum)


def prove(venv: Path, keep: Path | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="student-release-") as tmp:
        release = keep if keep is not None else Path(tmp) / "release"
        make = ["make", "--no-print-directory", f"VENV={venv}"]

        result = run([sys.executable, str(ROOT / "tools" / "student_release.py"), str(release), "--force"],
                     ROOT, "build the student release")
        if result.returncode != 0:
            raise fail("student-release", result, "the release could not be built")

        result = run(make + ["grade"], release, "make grade in the release (the stubs)")
        try:
            passed, total, points, maximum = totals(result.stdout)
        except ValueError:
            raise fail("make grade on the stubs", result, "no score table was printed") from None
        if result.returncode != 0 or total == 0 or passed != 0 or points != 0.0:
            raise fail("make grade on the stubs", result,
                       f"expected exit status 0 and 0 of {total} graded tests passing, 0 points; got exit status "
                       f"{result.returncode}, {passed} passing, {points} points")
        print(f"release-proof: the stubs score 0/{maximum}; all {total} graded tests fail on them.")

        workflow = release / ".github" / "workflows" / "classroom.yml"
        result = run([sys.executable, str(ROOT / "tools" / "lint_workflow.py"), str(workflow)], release,
                     "lint the Classroom workflow")
        print(result.stdout.strip())
        if result.returncode != 0:
            raise fail("lint-workflow", result, "the workflow does not pass the linters")

        for module in sorted((ROOT / "solutions" / "deployment").rglob("*.py")):
            target = release / "deployment" / module.relative_to(ROOT / "solutions" / "deployment")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(module, target)

        result = run(make + ["test"], release, "make test in the release with the solutions")
        try:
            passed, total, points, maximum = totals(result.stdout)
        except ValueError:
            raise fail("make test with the solutions", result, "no score table was printed") from None
        if result.returncode != 0 or passed != total or points != maximum:
            raise fail("make test with the solutions", result,
                       f"expected every test and notebook to pass; got {passed}/{total} tests, "
                       f"{points}/{maximum} points, exit status {result.returncode}")
        print(f"release-proof: the solutions score {points:.0f}/{maximum}, every notebook passing.")

        python = str(venv / "bin" / "python")
        start_here = sorted((release / "notebooks").glob("00_*.ipynb"))
        result = run([python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval-lax", "--nbval-current-env",
                      *map(str, start_here)], release, "notebook 00 with the solutions")
        if result.returncode != 0:
            raise fail("notebook 00", result, "notebook 00 does not pass nbval")

        given = sorted(str(p) for p in (release / "tests").glob("test_given_*.py"))
        if given:
            result = run([python, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:nbval", "-q", "-n", "2",
                          *given], release, "the tests of given code with the solutions")
            if result.returncode != 0:
                raise fail("tests of given code", result, "a test of given code fails")

        result = run(make + ["demo"], release, "make demo in the release with the solutions")
        if result.returncode != 0 or "Traceback" in result.stdout + result.stderr:
            raise fail("make demo", result, "the demo did not complete")
        print("release-proof: make demo completes.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv", help="the virtual environment to reuse")
    parser.add_argument("--keep", type=Path, help="build the release here and leave it (for debugging)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        prove(args.venv.resolve(), args.keep)
    except ProofFailed as failure:
        print(f"release-proof FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"release-proof: the student release works without the answers ({time.monotonic() - started:.0f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
