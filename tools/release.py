"""Make the student package ``deployment/`` from the solutions, as nbgrader makes a release.

``solutions/deployment/`` is the single source of truth. In its Python
files, code between a ``### BEGIN SOLUTION`` line and a ``### END
SOLUTION`` line is the student's to write:

* inside a function, the block becomes one ``raise NotImplementedError(...)``
  that names the part, the function and the notebook section to read, and
  ends with the command that checks that section;
* anywhere else (module level, a class body), every ``def`` and ``class``
  in the block becomes a stub: its decorators, signature and docstring
  stay, its body becomes that ``raise`` (a class keeps its docstring and
  field declarations, and its methods become stubs). Imports in the block
  (the solution's own) are removed; any other statement (a constant, an
  assignment) is an error: move it into given code, where the student
  sees it. So a stub never vanishes, and a docstring that names a helper
  names something the student has.

The BEGIN line says which part and section: ``### BEGIN SOLUTION part=1
section="2. Saving a model"``; the section starts with its number, the
``SECTION`` of ``make grade PART=1 SECTION=2``. Every other file, and
every line outside the blocks, is copied unchanged.

``--check`` also runs the docstring-names check (``tools/docstring_names.py``):
a student-facing docstring must not name, in backticks, a function, method or
attribute the student package does not have.

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
import tokenize
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
SECTION_NUMBER = re.compile(r"^(?P<number>\d+)\.\s")


class ReleaseError(Exception):
    """A solution file whose markers the generator cannot follow."""


def stub_message(part: int, function: str, section: str, where: str) -> str:
    """The text of a stub's ``NotImplementedError``: what to write, what to read, how to check it.

    ``where`` (``file:line``) only names the BEGIN line in a ReleaseError.
    """
    if part not in TOPICS:
        raise ReleaseError(f"{where}: part={part} is not a part of the workbook (1 to {max(TOPICS)}).")
    number = SECTION_NUMBER.match(section)
    if number is None:
        raise ReleaseError(f'{where}: the section must start with its number, e.g. section="2. Saving a model".')
    return (
        f"Part {part} ({TOPICS[part]}): write {function}(). "
        f"Read notebooks/{NOTEBOOKS[part]}, section '{section}'. "
        f"Check it with: make grade PART={part} SECTION={number['number']}"
    )


def _raise_lines(indent: str, message: str) -> list[str]:
    return [f"{indent}raise NotImplementedError(\n", f"{indent}    {message!r}\n", f"{indent})\n"]


def _scopes(tree: ast.Module) -> dict[int, tuple[str, str]]:
    """Map each line inside a function or class body to ``(kind, qualified name)``, innermost first.

    ``kind`` is ``"function"`` or ``"class"``; lines at module level are absent.
    A body starts on the line after ``def``/``class`` (a BEGIN comment may
    precede the first statement) and ends with its last statement.
    """
    scope: dict[int, tuple[str, str]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                kind = "class" if isinstance(child, ast.ClassDef) else "function"
                for line in range(child.lineno + 1, child.end_lineno + 1):
                    scope[line] = (kind, name)
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return scope


def _header_end(lines: list[str], node: ast.stmt) -> tuple[int, int]:
    """The (line, column) of the colon that ends a ``def`` or ``class`` header (line 1-based)."""
    rest = iter(lines[node.lineno - 1:])
    depth = 0
    for token in tokenize.generate_tokens(lambda: next(rest, "")):
        if token.type == tokenize.OP:
            if token.string in "([{":
                depth += 1
            elif token.string in ")]}":
                depth -= 1
            elif token.string == ":" and depth == 0:
                return node.lineno + token.start[0] - 1, token.start[1]
    raise AssertionError("a parsed def or class always has a header colon")  # pragma: no cover


def _stub_of(node: ast.stmt, lines: list[str], text: str, prefix: str, message_for, where) -> list[str]:
    """The stub of one ``def`` or ``class`` (lines without the block's indent).

    A function keeps its decorators, signature and docstring, and its body
    becomes the ``NotImplementedError``. A class keeps its decorators, header,
    docstring and field declarations (``name: type [= default]``), and each of
    its methods becomes a stub in turn.
    """
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    end_line, end_column = _header_end(lines, node)
    out = lines[first - 1:end_line - 1] + [lines[end_line - 1][:end_column + 1] + "\n"]
    body_indent = " " * (node.col_offset + 4)
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        docstring = body.pop(0)
        if docstring.lineno > end_line:
            out += lines[docstring.lineno - 1:docstring.end_lineno]
        else:  # on the header's line: `def f(): """Doc."""`
            out.append(body_indent + ast.get_source_segment(text, docstring) + "\n")
    qualname = prefix + node.name
    if not isinstance(node, ast.ClassDef):
        return out + _raise_lines(body_indent, message_for(qualname, node))
    members = 0
    for child in body:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out += ["\n"] + _stub_of(child, lines, text, qualname + ".", message_for, where)
        elif isinstance(child, ast.AnnAssign):
            out += lines[child.lineno - 1:child.end_lineno]
        elif isinstance(child, ast.Pass):
            continue
        else:
            raise ReleaseError(
                f"{where(child)}: a class inside a solution block may hold only its docstring, field "
                f"declarations (name: type = default) and methods; move this {type(child).__name__} "
                "into given code."
            )
        members += 1
    if not members and len(out) == end_line - first + 1:  # no docstring, no members: keep it valid
        out.append(body_indent + "pass\n")
    return out


def _stub_block(block: list[str], indent: str, prefix: str, message_for, where_line: int, filename: str) -> list[str]:
    """Turn a solution block outside any function into stubs: a ``def``/``class`` becomes its stub.

    Imports are dropped (the solution's own imports); anything else (a
    constant, an assignment, a statement) is a ReleaseError, because the
    student could not know it is there: such lines belong in given code.
    ``where_line`` is the file's line number of the block's first line.
    """
    lines = []
    for number, line in enumerate(block):
        if not line.strip():
            lines.append("\n")
        elif line.startswith(indent):
            lines.append(line[len(indent):])
        else:
            raise ReleaseError(f"{filename}:{where_line + number}: this line is indented less than its BEGIN SOLUTION line.")
    text = "".join(lines)
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise ReleaseError(
            f"{filename}:{where_line}: a solution block outside a function must be whole statements ({exc.msg})."
        ) from None

    def where(node: ast.AST) -> str:
        return f"{filename}:{where_line + node.lineno - 1}"

    stubs = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kind = type(node).__name__
            raise ReleaseError(
                f"{where(node)}: a solution block outside a function may hold only functions, classes and "
                f"imports; move this {kind} ({ast.unparse(node).splitlines()[0][:60]}) into given code, "
                "above the BEGIN SOLUTION line, so the student package has it too."
            )
        stubs.append(_stub_of(node, lines, text, prefix, lambda name, n: message_for(name, where(n)), where))
    separator = ["\n"] if prefix else ["\n", "\n"]  # PEP 8: one blank line between methods, two between functions
    out: list[str] = []
    for number, stub in enumerate(stubs):
        out += (separator if number else []) + stub
    return [indent + line if line.strip() else line for line in out]


def strip_solutions(source: str, filename: str) -> str:
    """The student version of one solution file."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ReleaseError(f"{filename}: not valid Python ({exc}).") from None
    scopes = _scopes(tree)
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
        end = next((j for j in range(i + 1, len(lines)) if END.match(lines[j]) or "### BEGIN SOLUTION" in lines[j]), None)
        if end is None or not END.match(lines[end]):
            raise ReleaseError(f"{filename}:{i + 1}: BEGIN SOLUTION without an END.")
        part, section = int(begin["part"]), begin["section"]

        def message_for(function: str, where: str, part: int = part, section: str = section) -> str:
            return stub_message(part, function, section, where)

        kind, name = scopes.get(i + 1, ("module", ""))
        if kind == "function":
            out += _raise_lines(begin["indent"], message_for(name, f"{filename}:{i + 1}"))
        else:
            prefix = name + "." if name else ""
            out += _stub_block(lines[i + 1:end], begin["indent"], prefix, message_for, i + 2, filename)
        i = end + 1
    result = "".join(out)
    # Removing imports can leave runs of blank lines; keep at most two.
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
    """0 if the committed student package is what the generator makes and its docstrings name
    only what it has (``tools/docstring_names.py``), else 1 with the differences."""
    if str(Path(__file__).resolve().parent) not in sys.path:  # python -P / PYTHONSAFEPATH leave it out
        sys.path.append(str(Path(__file__).resolve().parent))
    import docstring_names

    with tempfile.TemporaryDirectory() as tmp:
        expected_dir = Path(tmp) / "deployment"
        build(expected_dir)
        expected, actual = _files(expected_dir), _files(TARGET) if TARGET.exists() else {}
        names_status = docstring_names.report(expected_dir, SOURCE)
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
    return names_status


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
