"""Make the student package ``deployment/`` from the solutions, as nbgrader makes a release.

``solutions/deployment/`` is the single source of truth. In its Python
files, code between a ``### BEGIN SOLUTION`` line and a ``### END
SOLUTION`` line is the student's to write:

* inside a function, the block becomes one ``raise NotImplementedError(...)``
  that names the part, the function and the notebook section to read, so
  the signature and docstring stay as the contract;
* anywhere else (a private helper, an import only the solution needs) the
  block is removed.

The BEGIN line says which part and section: ``### BEGIN SOLUTION part=1
section="2. Saving a model"``. Every other file, and every line outside
the blocks, is copied unchanged.

Usage::

    python tools/release.py          # write deployment/
    python tools/release.py --check  # exit 1 if deployment/ differs from what it would write
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "solutions" / "deployment"
TARGET = ROOT / "deployment"

NOTEBOOKS = {
    1: "01_train_and_serialize.ipynb",
    2: "02_inference_api.ipynb",
    3: "03_monitoring_and_drift.ipynb",
    4: "04_model_registry.ipynb",
    5: "05_ab_testing.ipynb",
}
TOPICS = {1: "serialization", 2: "the inference API", 3: "monitoring", 4: "the model registry", 5: "A/B testing"}

BEGIN = re.compile(r'^(?P<indent>\s*)### BEGIN SOLUTION part=(?P<part>\d) section="(?P<section>[^"]+)"\s*$')
END = re.compile(r"^\s*### END SOLUTION\s*$")


class ReleaseError(Exception):
    """A solution file whose markers the generator cannot follow."""


def _enclosing_functions(source: str, filename: str) -> dict[int, str]:
    """Map each line number inside a function body to the function's qualified name."""
    owner: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                # From the line after `def` (a BEGIN comment may precede the first statement).
                for line in range(child.lineno + 1, child.end_lineno + 1):
                    owner[line] = name
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ReleaseError(f"{filename}: not valid Python ({exc}).") from None
    visit(tree, "")
    return owner


def strip_solutions(source: str, filename: str) -> str:
    """The student version of one solution file."""
    owner = _enclosing_functions(source, filename)
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        begin = BEGIN.match(lines[i])
        if not begin:
            if END.match(lines[i]):
                raise ReleaseError(f"{filename}:{i + 1}: END SOLUTION without a BEGIN.")
            if "### BEGIN SOLUTION" in lines[i]:
                raise ReleaseError(f'{filename}:{i + 1}: write BEGIN lines as ### BEGIN SOLUTION part=N section="...".')
            out.append(lines[i])
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if END.match(lines[j])), None)
        if end is None:
            raise ReleaseError(f"{filename}:{i + 1}: BEGIN SOLUTION without an END.")
        function = owner.get(i + 1)
        if function is not None:
            part, section = int(begin["part"]), begin["section"]
            message = (
                f"Part {part} ({TOPICS[part]}): write {function}(). "
                f"Read notebooks/{NOTEBOOKS[part]}, section '{section}'."
            )
            out.append(f"{begin['indent']}raise NotImplementedError(\n")
            out.append(f"{begin['indent']}    {message!r}\n")
            out.append(f"{begin['indent']})\n")
        i = end + 1
    result = "".join(out)
    # Removing a block can leave runs of blank lines; keep at most two.
    result = re.sub(r"\n{4,}", "\n\n\n", result)
    try:
        ast.parse(result)  # the student file must at least be valid Python
    except SyntaxError as exc:
        raise ReleaseError(f"{filename}: the generated student file is not valid Python ({exc}).") from None
    return result


def build(target: Path) -> None:
    """Write the student package into ``target``, replacing it only once every file is made."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    shutil.copymode(SOURCE, staging)  # mkdtemp makes it private (700); the package is as readable as its source
    try:
        for path in sorted(SOURCE.rglob("*")):
            if "__pycache__" in path.parts or path.is_dir():
                continue
            destination = staging / path.relative_to(SOURCE)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".py":
                destination.write_text(strip_solutions(path.read_text(), str(path.relative_to(ROOT))))
            else:
                shutil.copy2(path, destination)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def check() -> int:
    """0 if the committed student package is what the generator makes, else 1 with a diff."""
    with tempfile.TemporaryDirectory() as tmp:
        expected_dir = Path(tmp) / "deployment"
        build(expected_dir)
        expected, actual = _files(expected_dir), _files(TARGET) if TARGET.exists() else {}
    problems = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            problems.append(f"deployment/{name} is missing.")
        elif name not in expected:
            problems.append(f"deployment/{name} has no source in solutions/deployment/.")
        elif expected[name] != actual[name]:
            diff = difflib.unified_diff(
                expected[name].splitlines(), actual[name].splitlines(),
                f"generated/{name}", f"deployment/{name}", lineterm="", n=1,
            )
            problems.append("\n".join(list(diff)[:40]))
    if problems:
        print("The student package differs from what tools/release.py makes from the solutions:")
        print("\n".join(problems))
        print("Edit solutions/deployment/, never deployment/, then run `make release`.")
        return 1
    print(f"check-release: deployment/ matches the solutions ({len(expected)} files).")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    try:
        if args.check:
            return check()
        build(TARGET)
    except ReleaseError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 2
    print(f"release: wrote {TARGET.relative_to(ROOT)}/ from {SOURCE.relative_to(ROOT)}/.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
