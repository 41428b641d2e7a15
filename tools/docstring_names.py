"""The docstring-names check: a student-facing docstring names only what the student package has.

Students read the docstrings of ``deployment/`` as the whole specification.
A docstring that names, in double backticks, a helper or an attribute the
student package does not have (``_outputs`` after its block was deleted,
``self._keys`` when nothing sets it) sends the student looking for nothing.

The check reads the student package (as the release generator makes it)
beside the solutions, both as source (nothing is imported), and looks at
every ``double-backticked`` span (or `single`, as markdown writes it) of
every module, class and function docstring (and of the string that
documents a constant). A span is a
*reference* when it is a dotted name, optionally called or indexed
(``_outputs``, ``self._keys``, ``InferenceAPI.admit``,
``_check_rate_limit(client, started_s)``, ``self._classes[argmax]``);
literals (``"ok"``, ``1e-4``, ``[0, 1)``, ``{"instances": ...}``) and
expressions are not references. A reference is reported when:

* it exists in the solutions but not in the student package: a top-level
  name or a class member that the student never sees (the solutions are the
  list of what the package's names are, so this cannot be a dict key or a
  word of prose that happens to look like a name);
* it is ``self.NAME`` (or ``cls.NAME``, ``Class.NAME`` for a class of the
  package, ``deployment.module.NAME``) and NAME is nowhere in that class or
  module of the student package, while every base class of the class is the
  package's own, so nothing inherited could provide it.

A class's members are its methods, nested classes, class-level assignments
and field declarations, and every ``self.NAME = ...`` of its given code
(methods a student writes assign nothing in the student package). When a
class's ``__init__`` is the student's to write, the ``self.NAME``s that its
docstring, or the class docstring, names are its members too: the
constructor the student writes is documented to create them.

Out of scope (never reported): names whose first part is not the package's
(``np.percentile``, ``json.dumps``, ``hmac.compare_digest``,
``scipy.stats.ks_2samp``), parameters of the function documented and their
attributes (``config.api_keys``), names neither package defines (dict keys,
metric names, local variables), and ``module.NAME`` without the
``deployment.`` prefix unless the solutions' module has NAME (``registry``
is also the doctests' registry).

Findings that cannot be fixed yet can be listed, one per line, as
``module owner reference  # why`` in ``tools/docstring_names_allowed.txt``
(the file says it is temporary). Usage::

    python tools/docstring_names.py   # report the student package deployment/
"""

from __future__ import annotations

import argparse
import ast
import builtins
import keyword
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = Path(__file__).resolve().parent / "docstring_names_allowed.txt"
PACKAGE = "deployment"

SPAN = re.compile(r"``(?P<double>[^`]+?)``|`(?P<single>[^`\n]+)`", re.DOTALL)  # ``name`` (or `name`, markdown)
REFERENCE = re.compile(
    r"(?P<ref>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"  # a dotted name
    r"(?:\(.*\)|\[.*\])?"  # optionally called or indexed: name(args), name[i]
    r"(?:\s*->\s*.+)?",  # optionally with a return annotation: name(args) -> int
    re.DOTALL,
)
NOT_NAMES = set(keyword.kwlist) | set(keyword.softkwlist) | {"_"}
BUILTINS = set(dir(builtins))


@dataclass
class ClassInfo:
    """What one class of a package holds, read from its source."""

    module: str
    qualname: str
    bases: list[str]
    members: set[str] = field(default_factory=set)  # everything below, and every self.NAME its given code sets
    definitions: set[str] = field(default_factory=set)  # methods, nested classes, class-level names
    declared: set[str] = field(default_factory=set)  # self.NAMEs its student-written __init__ is documented to set


@dataclass
class ModuleInfo:
    """The top-level names of one module: what it defines and what it imports from where."""

    name: str
    defined: set[str] = field(default_factory=set)
    internal: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, name) in the package
    external: set[str] = field(default_factory=set)  # names imported from outside the package
    classes: dict[str, ClassInfo] = field(default_factory=dict)  # qualname -> info, nested classes too


@dataclass(frozen=True)
class Finding:
    """One reference a docstring makes to something the student package does not have."""

    module: str  # file name, e.g. "inference.py"
    owner: str  # qualified name of the documented object, "<module>" for the module docstring
    reference: str  # as written, without the call or index: "self._keys", "_outputs"
    line: int  # the line of the docstring in the student file
    why: str

    @property
    def key(self) -> str:
        return f"{self.module} {self.owner} {self.reference}"

    def __str__(self) -> str:
        return f"deployment/{self.module}:{self.line}: {self.owner}: ``{self.reference}`` {self.why}"


def _is_stub(function: ast.AST) -> bool:
    """True when a function's body holds the release generator's ``NotImplementedError``."""
    return any(
        isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
        and getattr(node.exc.func, "id", None) == "NotImplementedError"
        for node in ast.walk(function)
    )


def _self_attributes(function: ast.AST) -> set[str]:
    """Every NAME a function sets on ``self``: ``self.NAME = ...`` (also augmented and annotated),
    ``setattr(self, "NAME", ...)`` and ``object.__setattr__(self, "NAME", ...)`` (frozen dataclasses)."""
    found = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) \
                and node.args[0].id in ("self", "cls") and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str) \
                and (getattr(node.func, "id", None) == "setattr" or getattr(node.func, "attr", None) == "__setattr__"):
            found.add(node.args[1].value)
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and isinstance(part.value, ast.Name) \
                        and part.value.id in ("self", "cls") and isinstance(part.ctx, ast.Store):
                    found.add(part.attr)
    return found


def _docstring_references(text: str) -> set[str]:
    """The dotted names that ``text``'s backticked spans are (see REFERENCE)."""
    found = set()
    for span in SPAN.finditer(text):
        match = REFERENCE.fullmatch((span["double"] or span["single"]).strip())
        if match and match["ref"] not in NOT_NAMES:
            found.add(match["ref"])
    return found


def _read_class(node: ast.ClassDef, module: str, qualname: str, info: ModuleInfo) -> None:
    cls = ClassInfo(module, qualname, [ast.unparse(base) for base in node.bases])
    info.classes[qualname] = cls
    init_docs: list[str] = []
    for child in node.body:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            cls.definitions.add(child.name)
            cls.members |= _self_attributes(child)
            if child.name == "__init__" and _is_stub(child):
                init_docs = [ast.get_docstring(node) or "", ast.get_docstring(child) or ""]
        elif isinstance(child, ast.ClassDef):
            cls.definitions.add(child.name)
            _read_class(child, module, f"{qualname}.{child.name}", info)
        elif isinstance(child, ast.Assign):
            cls.definitions |= {t.id for target in child.targets for t in ast.walk(target) if isinstance(t, ast.Name)}
            if any(getattr(target, "id", None) == "__slots__" for target in child.targets):
                cls.members |= {c.value for c in ast.walk(child.value)
                                if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name):
            cls.definitions.add(child.target.id)
    cls.members |= cls.definitions
    for text in init_docs:
        cls.declared |= {ref.split(".")[1] for ref in _docstring_references(text)
                         if ref.startswith(("self.", "cls."))}


def read_module(source: str, name: str) -> ModuleInfo:
    """The names module ``name`` (its file stem) defines and imports, from its source."""
    info = ModuleInfo(name)
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            info.defined.add(node.name)
        elif isinstance(node, ast.ClassDef):
            info.defined.add(node.name)
            _read_class(node, name, node.name, info)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            info.defined |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom):
            inside = node.level > 0 or (node.module or "").split(".")[0] == PACKAGE
            for alias in node.names:
                local = alias.asname or alias.name
                if inside:
                    source_module = (node.module or "").removeprefix(PACKAGE).lstrip(".") or "__init__"
                    info.internal[local] = (source_module, alias.name)
                else:
                    info.external.add(local)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                info.external.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.If, ast.Try)):  # `if TYPE_CHECKING:` imports, optional imports
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    info.external |= {(a.asname or a.name).split(".")[0] for a in inner.names}
    return info


class Package:
    """Every module of one copy of the package, read from source, with name lookups across them."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.modules = {Path(file).stem: read_module(text, Path(file).stem) for file, text in sources.items()}
        # Every top-level name, method, nested class and class-level name, package-wide: what a bare
        # ``name`` may refer to. Instance attributes are left out: their names are also the
        # parameters, dict keys and prose words that docstrings use (``window_size``, ``status``).
        self.definitions: set[str] = set()
        for module in self.modules.values():
            self.definitions |= module.defined
            for cls in module.classes.values():
                self.definitions |= cls.definitions

    def find_class(self, module: str, name: str, seen: frozenset = frozenset()) -> ClassInfo | None:
        """The class ``name`` as module ``module`` sees it (its own, or imported from the package)."""
        info = self.modules.get(module)
        if info is None or (module, name) in seen:
            return None
        if name in info.classes:
            return info.classes[name]
        if name in info.internal:
            source_module, source_name = info.internal[name]
            return self.find_class(source_module, source_name, seen | {(module, name)})
        return None

    def members(self, cls: ClassInfo) -> tuple[set[str], bool]:
        """The members of ``cls`` and its package bases, and whether every base is the package's own."""
        members, closed = set(cls.members) | cls.declared, True
        for base in cls.bases:
            if base == "object":
                continue
            base_class = self.find_class(cls.module, base)
            if base_class is None:
                closed = False  # a library's class (Exception, NamedTuple, logging.Handler...): could hold anything
                continue
            base_members, base_closed = self.members(base_class)
            members |= base_members
            closed = closed and base_closed
        return members, closed

    def top_level(self, module: str, name: str) -> bool:
        info = self.modules.get(module)
        return info is not None and (name in info.defined or name in info.internal)


@dataclass
class _Scope:
    module: str
    owner: str  # qualname or "<module>"
    cls: str | None  # qualname of the class the docstring belongs to (or its method's class)
    parameters: set[str]


def _docstrings(tree: ast.Module, module: str):
    """Yield (scope, docstring text, line) for the module, every class and function, and constants' strings."""

    def parameters(function: ast.AST) -> set[str]:
        args = function.args
        every = args.posonlyargs + args.args + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]
        return {a.arg for a in every}

    def documented_strings(body: list[ast.stmt]):
        for previous, node in zip(body, body[1:]):
            if isinstance(previous, (ast.Assign, ast.AnnAssign)) and isinstance(node, ast.Expr) \
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                yield node.value.value, node.lineno

    def visit(node: ast.AST, prefix: str, cls: str | None, outer: set[str]):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                qualname = prefix + child.name
                init = next((c for c in child.body if isinstance(c, ast.FunctionDef) and c.name == "__init__"), None)
                scope = _Scope(module, qualname, qualname, parameters(init) if init else set())
                text = ast.get_docstring(child, clean=False)
                if text:
                    yield scope, text, child.body[0].lineno
                for text, line in documented_strings(child.body):
                    yield scope, text, line
                yield from visit(child, qualname + ".", qualname, set())
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = prefix + child.name
                scope = _Scope(module, qualname, cls, outer | parameters(child))
                text = ast.get_docstring(child, clean=False)
                if text:
                    yield scope, text, child.body[0].lineno
                yield from visit(child, qualname + ".", cls, scope.parameters)

    text = ast.get_docstring(tree, clean=False)
    if text:
        yield _Scope(module, "<module>", None, set()), text, tree.body[0].lineno
    for text, line in documented_strings(tree.body):
        yield _Scope(module, "<module>", None, set()), text, line
    yield from visit(tree, "", None, set())


def check_reference(reference: str, scope: _Scope, student: Package, solutions: Package) -> str | None:
    """Why ``reference`` (a dotted name in a docstring at ``scope``) names nothing the student has, or None."""
    parts = reference.split(".")
    head = parts[0]
    module = student.modules[scope.module]
    in_solutions = "is in the solutions but not in the student package"

    def class_member(cls_name: str, attribute: str, explicit_class: bool) -> str | None:
        cls = student.find_class(scope.module, cls_name)
        if cls is None:
            return None
        members, closed = student.members(cls)
        if attribute in members:
            return None
        reference_class = solutions.find_class(scope.module, cls_name)
        if reference_class is not None and attribute in solutions.members(reference_class)[0]:
            return f"{in_solutions} (nothing in {cls.qualname}'s given code sets or defines it)"
        if closed:
            kind = "" if explicit_class else " (its given code never sets it)"
            return f"is not an attribute or method of {cls.qualname}{kind}"
        return None

    if head in ("self", "cls"):
        if scope.cls is None or len(parts) < 2:
            return None
        return class_member(scope.cls, parts[1], explicit_class=False)
    if head in scope.parameters:
        return None  # a value the caller passes: its attributes are not the package's to check
    if head == PACKAGE:
        if len(parts) < 2:
            return None
        if parts[1] in student.modules:
            if len(parts) >= 3 and not student.top_level(parts[1], parts[2]):
                return f"is not a name of {PACKAGE}.{parts[1]}"
            return None
        if student.top_level("__init__", parts[1]):
            return None
        return f"is not a module or top-level name of {PACKAGE}"
    if head in module.external and head not in module.defined:
        return None  # another library's name (np., json., hmac., scipy.stats...)
    if len(parts) >= 2 and student.find_class(scope.module, head) is not None:
        return class_member(head, parts[1], explicit_class=True)
    if len(parts) >= 2 and head in student.modules and head not in module.defined:
        # `registry.load_model` may be a variable's method: only a name the solutions' module has counts.
        if student.top_level(head, parts[1]) or not solutions.top_level(head, parts[1]):
            return None
        return in_solutions
    if len(parts) == 1:
        if head in student.definitions or head in BUILTINS:
            return None
        if head in solutions.definitions:
            return in_solutions
    return None


def find_missing_names(student_sources: dict[str, str], solution_sources: dict[str, str]) -> list[Finding]:
    """Every docstring reference of the student package that names nothing the student has.

    Both arguments map a file name (``inference.py``) to its source text.
    """
    student, solutions = Package(student_sources), Package(solution_sources)
    findings = []
    for file, text in sorted(student_sources.items()):
        seen = set()
        for scope, docstring, line in _docstrings(ast.parse(text), Path(file).stem):
            for reference in sorted(_docstring_references(docstring)):
                why = check_reference(reference, scope, student, solutions)
                finding = Finding(file, scope.owner, reference, line, why or "")
                if why and finding.key not in seen:
                    seen.add(finding.key)
                    findings.append(finding)
    return findings


def stubs_without_docstring(student_sources: dict[str, str]) -> list[str]:
    """``file:line qualname`` of every stub (a function the student writes) that has no docstring."""
    found = []
    for file, text in sorted(student_sources.items()):

        def visit(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if _is_stub(child) and ast.get_docstring(child) is None:
                        found.append(f"deployment/{file}:{child.lineno} {prefix}{child.name}")
                    visit(child, f"{prefix}{child.name}.")
                elif isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.")

        visit(ast.parse(text), "")
    return found


def read_allowed(path: Path = ALLOWED) -> dict[str, str]:
    """The allow-list: ``module owner reference`` -> why (lines starting with # are comments)."""
    if not path.exists():
        return {}
    allowed = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        entry, _, why = line.partition("#")
        if not entry.strip():
            continue
        fields = entry.split()
        if len(fields) != 3:
            raise SystemExit(f"{path.name}:{number}: write an entry as `module.py owner reference  # why`.")
        allowed[" ".join(fields)] = why.strip()
    return allowed


def sources(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.glob("*.py"))}


def report(student_folder: Path, solutions_folder: Path, *, allowed: dict[str, str] | None = None) -> int:
    """Print the findings; 1 if any is not allowed, else 0. Used by ``release.py --check``."""
    allowed = read_allowed() if allowed is None else allowed
    student = sources(student_folder)
    findings = find_missing_names(student, sources(solutions_folder))
    new = [f for f in findings if f.key not in allowed]
    stale = sorted(set(allowed) - {f.key for f in findings})
    undocumented = stubs_without_docstring(student)
    if new:
        print(f"docstring names: {len(new)} docstring(s) of the student package name what it does not have:")
        for finding in new:
            print(f"  {finding}")
        print("Name something the student has, define it in given code, or describe it in words.")
    else:
        known = f" ({len(findings)} known finding(s) allowed in tools/{ALLOWED.name})" if findings else ""
        print(f"docstring names: every name the student's docstrings give exists{known}.")
    if stale:
        print(f"docstring names: fixed, remove from tools/{ALLOWED.name}: " + "; ".join(stale))
    if undocumented:
        print(f"docstring names: note: {len(undocumented)} stub(s) have no docstring, so no contract "
              "(see python3 tools/docstring_names.py).")
    return 1 if new else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", type=Path, default=ROOT / PACKAGE, help="the student package folder")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions" / PACKAGE)
    args = parser.parse_args(argv)
    student = sources(args.student)
    allowed = read_allowed()
    for finding in find_missing_names(student, sources(args.solutions)):
        print(f"{finding}{'   [allowed]' if finding.key in allowed else ''}")
    for stub in stubs_without_docstring(student):
        print(f"{stub}: a stub with no docstring")
    return 0


if __name__ == "__main__":
    sys.exit(main())
