"""Grade a deployment package: the graded tests and notebooks, part by part, as a score table.

Usage::

    python tools/grade.py                          # the student package deployment/ here
    python tools/grade.py --part 2                 # one part only
    python tools/grade.py --submission ../alice    # another checkout (a folder holding deployment/)
    python tools/grade.py --submission submissions/  # every checkout inside a folder, one row each
    python tools/grade.py --expect-fail            # prove every graded test fails on the stubs

The tests and notebooks always come from this checkout, so a submission
is graded against the official versions, whatever its own copies say.
Each part is worth ``POINTS_PER_PART`` points, in proportion to the tests
that pass; the notebook's status is shown beside it.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = {1: "serialization", 2: "inference API", 3: "monitoring", 4: "model registry", 5: "A/B testing"}
POINTS_PER_PART = 20
TEST_FILE = re.compile(r"test_part(\d)_")


@dataclass
class PartScore:
    part: int
    passed: int = 0
    total: int = 0
    passing_tests: list[str] = field(default_factory=list)
    notebook: str = "not run"

    @property
    def points(self) -> float:
        return POINTS_PER_PART * self.passed / self.total if self.total else 0.0


def run_tests(package_home: Path, parts: list[int]) -> dict[int, PartScore]:
    """Run the graded tests of ``parts`` against the package in ``package_home``."""
    scores = {part: PartScore(part) for part in parts}
    files = sorted(str(p) for part in parts for p in (ROOT / "tests").glob(f"test_part{part}_*.py"))
    if not files:
        return scores
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        command = [
            sys.executable, "-m", "pytest", *files, f"--impl={package_home}",
            "-m", " or ".join(f"part{p}" for p in parts),
            "-p", "no:cacheprovider", "-q", "--tb=no", "-n", "2", f"--junitxml={report}",
        ]
        subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not report.exists():
            raise SystemExit(f"grade: pytest wrote no report for {package_home}; run the command by hand:\n  {' '.join(command)}")
        for case in ET.parse(report).getroot().iter("testcase"):
            match = TEST_FILE.search(case.get("file", "") or case.get("classname", ""))
            if not match or int(match.group(1)) not in scores:
                continue
            score = scores[int(match.group(1))]
            score.total += 1
            if not any(child.tag in ("failure", "error", "skipped") for child in case):
                score.passed += 1
                score.passing_tests.append(f"{case.get('classname')}::{case.get('name')}")
    return scores


def run_notebook(package_home: Path, part: int) -> str:
    """'passed', 'failed' or 'missing' for the part's notebook, run with nbval against the package."""
    notebooks = sorted((ROOT / "notebooks").glob(f"{part:02d}_*.ipynb"))
    if not notebooks:
        return "missing"
    command = [
        sys.executable, "-m", "pytest", str(notebooks[0]), f"--impl={package_home}",
        "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=300",
        "-p", "no:cacheprovider", "-q", "--tb=no",
    ]
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return "passed" if result.returncode == 0 else "failed"


def find_submissions(path: Path) -> list[Path]:
    """The checkout itself if it holds deployment/, else every sub-folder that does."""
    if (path / "deployment" / "__init__.py").is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if (p / "deployment" / "__init__.py").is_file())
    if not found:
        raise SystemExit(f"grade: {path} holds no deployment/ package, nor do its sub-folders.")
    return found


def print_table(name: str, scores: dict[int, PartScore]) -> None:
    print(f"\nGrading {name}")
    print(f"{'part':<6}{'topic':<16}{'tests':>9}{'points':>10}  notebook")
    for score in scores.values():
        print(f"{score.part:<6}{PARTS[score.part]:<16}{f'{score.passed}/{score.total}':>9}"
              f"{f'{score.points:.1f}/{POINTS_PER_PART}':>10}  {score.notebook}")
    passed = sum(s.passed for s in scores.values())
    total = sum(s.total for s in scores.values())
    points = sum(s.points for s in scores.values())
    print(f"{'total':<22}{f'{passed}/{total}':>9}{f'{points:.1f}/{POINTS_PER_PART * len(scores)}':>10}")


def expect_fail() -> int:
    """Exit status 0 when every graded test fails against the stubs in deployment/."""
    scores = run_tests(ROOT, list(PARTS))
    total = sum(s.total for s in scores.values())
    passing = [t for s in scores.values() for t in s.passing_tests]
    if total == 0:
        print("test-stubs: no graded tests were collected.")
        return 1
    if passing:
        print(f"test-stubs: {len(passing)} of {total} graded tests PASS against the stubs; "
              "a graded test must fail until the student writes the part:")
        for test in passing:
            print(f"  {test}")
        return 1
    print(f"test-stubs: all {total} graded tests fail against the stubs in deployment/, as they must.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", type=int, choices=sorted(PARTS), help="grade one part only")
    parser.add_argument("--submission", type=Path, help="a checkout, or a folder of checkouts")
    parser.add_argument("--no-notebooks", action="store_true", help="skip the notebooks")
    parser.add_argument("--expect-fail", action="store_true", help="check that every graded test fails on the stubs")
    args = parser.parse_args(argv)
    if args.expect_fail:
        return expect_fail()

    parts = [args.part] if args.part else list(PARTS)
    homes = find_submissions(args.submission.resolve()) if args.submission else [ROOT]
    rows = []
    for home in homes:
        scores = run_tests(home, parts)
        if not args.no_notebooks:
            for part in parts:
                scores[part].notebook = run_notebook(home, part)
        name = "the student package deployment/" if home == ROOT else str(home)
        print_table(name, scores)
        rows.append((home, scores))
    if len(rows) > 1:
        out = ROOT / "build" / "grades.csv"
        out.parent.mkdir(exist_ok=True)
        with out.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["submission"] + [f"part{p}_points" for p in parts] + ["total"])
            for home, scores in rows:
                writer.writerow([home.name] + [f"{scores[p].points:.1f}" for p in parts]
                                + [f"{sum(s.points for s in scores.values()):.1f}"])
        print(f"\nWrote {out.relative_to(ROOT)} ({len(rows)} submissions).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
