"""The release generator (tools/release.py): every solution block becomes a stub the student can see,
and the docstring-names check it runs (tools/docstring_names.py)."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tools"))

import docstring_names  # noqa: E402  (tools/docstring_names.py)
import release  # noqa: E402  (tools/release.py)


def _release(source: str) -> str:
    return release.strip_solutions(textwrap.dedent(source).lstrip("\n"), "example.py")


def _run(stub: str) -> dict:
    namespace: dict = {}
    exec(compile(stub, "example.py", "exec"), namespace)
    return namespace


def test_stub_message_names_the_part_the_function_the_notebook_section_and_the_check_command():
    assert release.stub_message(2, "InferenceAPI.validate", "2. Validating requests", "x.py:1") == (
        "Part 2 (the inference API): write InferenceAPI.validate(). Read notebooks/02_inference_api.ipynb, "
        "section '2. Validating requests'. Check it with: make grade PART=2 SECTION=2"
    )


def test_stub_message_takes_the_section_number_from_the_title():
    message = release.stub_message(3, "f", "12. Twelve steps", "x.py:1")
    assert message.endswith("Check it with: make grade PART=3 SECTION=12")


def test_block_in_a_function_becomes_one_raise_ending_with_the_check_command():
    stub = _release('''
        def add(a, b):
            """Add two numbers."""
            ### BEGIN SOLUTION part=2 section="1. Adding"
            def helper():
                return a
            return helper() + b
            ### END SOLUTION
        ''')
    assert "helper" not in stub and "return" not in stub
    with pytest.raises(NotImplementedError) as caught:
        _run(stub)["add"](1, 2)
    assert str(caught.value) == (
        "Part 2 (the inference API): write add(). Read notebooks/02_inference_api.ipynb, section '1. Adding'. "
        "Check it with: make grade PART=2 SECTION=1"
    )


def test_module_level_function_becomes_a_stub_with_its_signature_and_docstring():
    stub = _release('''
        GIVEN = 1


        ### BEGIN SOLUTION part=1 section="2. Saving"
        def _helper(x: int, *, scale: float = 2.0) -> float:
            """Scale ``x``: the contract the student reads."""
            return x * scale
        ### END SOLUTION
        ''')
    assert stub == textwrap.dedent('''\
        GIVEN = 1


        def _helper(x: int, *, scale: float = 2.0) -> float:
            """Scale ``x``: the contract the student reads."""
            raise NotImplementedError(
                "Part 1 (serialization): write _helper(). Read notebooks/01_train_and_serialize.ipynb, section '2. Saving'. Check it with: make grade PART=1 SECTION=2"
            )
        ''')


def test_functions_of_one_block_stay_two_blank_lines_apart():
    stub = _release('''
        ### BEGIN SOLUTION part=1 section="2. Saving"
        def first():
            return 1
        # a comment only the solution needs
        def second():
            return 2
        ### END SOLUTION
        ''')
    assert "comment" not in stub
    assert ")\n\n\ndef second():\n" in stub
    ast.parse(stub)


def test_decorators_and_a_signature_on_several_lines_are_kept():
    stub = _release('''
        import functools


        ### BEGIN SOLUTION part=5 section="3. Caching"
        @functools.lru_cache(maxsize=None)
        def lookup(
            key: str,
            default: dict = {"a": (1, 2)},
        ) -> str:  # a comment after the colon
            return key
        ### END SOLUTION
        ''')
    assert '@functools.lru_cache(maxsize=None)\ndef lookup(\n    key: str,\n    default: dict = {"a": (1, 2)},\n) -> str:\n' in stub
    lookup = _run(stub)["lookup"]
    assert hasattr(lookup, "cache_info")  # the decorator still applies
    with pytest.raises(NotImplementedError, match=r"write lookup\(\)\..*SECTION=3$"):
        lookup("k")


def test_async_function_and_one_line_function_become_stubs():
    stub = _release('''
        ### BEGIN SOLUTION part=2 section="5. Answering"
        async def answer(request):
            """Answer one request."""
            return 200
        def one_line(x): """Doc on the header line."""; return x
        ### END SOLUTION
        ''')
    assert 'async def answer(request):\n    """Answer one request."""\n    raise NotImplementedError(' in stub
    assert 'def one_line(x):\n    """Doc on the header line."""\n    raise NotImplementedError(' in stub
    with pytest.raises(NotImplementedError, match=r"write one_line\(\)"):
        _run(stub)["one_line"](1)


def test_methods_in_a_block_at_class_level_become_stubs_named_with_their_class():
    stub = _release('''
        class Box:
            """A box."""

            def size(self):
                return 3

            ### BEGIN SOLUTION part=4 section="2. Sizes"
            def _inner(self):
                """The inner size."""
                return 2

            @property
            def volume(self):
                return 8
            ### END SOLUTION

            def given(self):
                return 1
        ''')
    assert "    def _inner(self):\n        \"\"\"The inner size.\"\"\"\n        raise NotImplementedError(" in stub
    assert "        )\n\n    @property\n    def volume(self):\n" in stub
    box = _run(stub)["Box"]()
    assert box.given() == 1
    with pytest.raises(NotImplementedError, match=r"write Box\._inner\(\)\..*SECTION=2$"):
        box._inner()
    with pytest.raises(NotImplementedError, match=r"write Box\.volume\(\)"):
        box.volume


def test_class_in_a_block_keeps_its_docstring_and_fields_and_its_methods_become_stubs():
    stub = _release('''
        from dataclasses import dataclass


        ### BEGIN SOLUTION part=3 section="4. Windows"
        @dataclass
        class Window:
            """A window of ``size`` seconds."""

            size: float
            label: str = "w"

            def width(self) -> float:
                """Its width, in seconds."""
                return self.size

            class Inner:
                def deep(self):
                    return 0
        ### END SOLUTION
        ''')
    namespace = _run(stub)
    window = namespace["Window"](2.0)
    assert window.label == "w" and namespace["Window"].__doc__ == "A window of ``size`` seconds."
    with pytest.raises(NotImplementedError, match=r"write Window\.width\(\)"):
        window.width()
    with pytest.raises(NotImplementedError, match=r"write Window\.Inner\.deep\(\)"):
        namespace["Window"].Inner().deep()


def test_imports_in_a_module_level_block_are_removed():
    stub = _release('''
        ### BEGIN SOLUTION part=1 section="2. Saving"
        import hashlib
        from os import path as os_path
        def digest(data):
            return hashlib.sha256(data).hexdigest()
        ### END SOLUTION
        ''')
    assert "import" not in stub and "def digest(data):" in stub


@pytest.mark.parametrize("statement, kind", [
    ("_MISSING = object()", "Assign"),
    ("LIMIT: int = 3", "AnnAssign"),
    ('"""A docstring of a constant."""', "Expr"),
    ("if True:\n    pass", "If"),
])
def test_any_other_statement_at_module_level_is_an_error_that_says_to_move_it(statement, kind):
    source = 'x = 1\n### BEGIN SOLUTION part=2 section="7. Caching"\ndef f():\n    pass\n' + statement + "\n### END SOLUTION\n"
    with pytest.raises(release.ReleaseError) as caught:
        release.strip_solutions(source, "example.py")
    message = str(caught.value)
    assert message.startswith("example.py:5: ")
    assert f"move this {kind}" in message and "into given code" in message


def test_a_class_statement_other_than_fields_and_methods_is_an_error():
    source = '### BEGIN SOLUTION part=2 section="7. Caching"\nclass C:\n    LIMIT = 3\n### END SOLUTION\n'
    with pytest.raises(release.ReleaseError, match=r"^example\.py:3: .*move this Assign into given code"):
        release.strip_solutions(source, "example.py")


@pytest.mark.parametrize("source, problem", [
    ('### BEGIN SOLUTION part=1 section="1. x"\nx = 1\n', "without an END"),
    ('### BEGIN SOLUTION part=1 section="1. x"\n### BEGIN SOLUTION part=1 section="1. x"\n### END SOLUTION\n',
     "without an END"),
    ("x = 1\n### END SOLUTION\n", "without a BEGIN"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "part=N"),
    ('def f():\n    ### BEGIN SOLUTION part=1 section="Saving"\n    pass\n    ### END SOLUTION\n',
     "section must start with its number"),
    ('def f():\n    ### BEGIN SOLUTION part=7 section="1. x"\n    pass\n    ### END SOLUTION\n',
     "part=7 is not a part"),
    ('class C:\n    ### BEGIN SOLUTION part=1 section="1. x"\n    def f(self):\n        \"\"\"Doc\nat column 0.\"\"\"\n'
     '    ### END SOLUTION\n', "indented less than its BEGIN"),
])
def test_malformed_markers_are_reported_with_their_line(source, problem):
    with pytest.raises(release.ReleaseError, match=rf"^example\.py:\d+: .*{problem}"):
        release.strip_solutions(source, "example.py")


def _definitions(texts: dict[str, str]) -> set[str]:
    """``file:qualname`` of every def and class (methods and nested classes too) in ``texts``."""
    found = set()

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.add(where + child.name)
                if isinstance(child, ast.ClassDef):
                    visit(child, f"{where}{child.name}.")

    for name, text in texts.items():
        visit(ast.parse(text), f"{name}:")
    return found


def test_every_function_and_class_of_the_solutions_is_in_the_student_package():
    solutions = {p.name: p.read_text() for p in sorted((ROOT / "solutions" / "deployment").glob("*.py"))}
    student = {name: release.strip_solutions(text, name) for name, text in solutions.items()}
    assert _definitions(solutions) - _definitions(student) == set()


# --- the docstring-names check (tools/docstring_names.py, run by release.py --check) ---------------
SOLUTION = '''
"""A module. Its docstring may name ``_helper`` and ``Box.size``."""

import hmac
import json

import numpy as np


def _helper(x):
    """Double ``x``."""
    return 2 * x


class Box:
    """A box. ``self._keys`` holds its keys; compare with ``hmac.compare_digest``."""

    def __init__(self, keys, config):
        self._keys = list(keys)
        self.config = config

    def size(self):
        """Uses ``_helper``, ``self._keys``, ``config.api_keys``, ``np.percentile`` and ``json.dumps``."""
        return _helper(len(self._keys))
'''


def _findings(student: str, solution: str = SOLUTION) -> list[str]:
    found = docstring_names.find_missing_names({"box.py": textwrap.dedent(student)}, {"box.py": solution})
    return [f"{f.owner} {f.reference}" for f in found]


def test_names_the_student_package_has_are_not_reported():
    assert _findings(SOLUTION) == []


def test_a_helper_that_exists_only_in_the_solutions_is_reported():
    student = SOLUTION.replace("def _helper(x):", "def _renamed(x):")
    assert _findings(student) == ["<module> _helper", "Box.size _helper"]


def test_an_attribute_the_given_code_never_sets_is_reported():
    student = SOLUTION.replace("self._keys = list(keys)", "pass")
    assert _findings(student) == ["Box self._keys", "Box.size self._keys"]


def test_an_attribute_named_nowhere_is_reported_when_the_class_has_only_package_bases():
    student = SOLUTION.replace("Uses ``_helper``", "Uses ``self._cache``, ``Box.missing``, ``_helper``")
    assert _findings(student) == ["Box.size Box.missing", "Box.size self._cache"]


def test_attributes_set_with_setattr_or_declared_in_slots_are_members():
    student = SOLUTION.replace("        self._keys = list(keys)\n", "        object.__setattr__(self, \"_keys\", keys)\n"
                               "        setattr(self, \"_other\", 1)\n").replace(
        "``hmac.compare_digest``.\"\"\"\n", "``hmac.compare_digest``.\"\"\"\n    __slots__ = (\"_slotted\",)\n").replace(
        "Uses ``_helper``", "Uses ``self._other``, ``self._slotted``, ``_helper``")
    assert _findings(student) == []


def test_an_attribute_of_a_class_with_a_library_base_is_out_of_scope():
    student = SOLUTION.replace("class Box:", "class Box(Exception):").replace(
        "Uses ``_helper``", "Uses ``self.args``, ``self._inherited``")
    assert _findings(student) == []


def test_attributes_the_docstring_of_a_stubbed_constructor_names_are_the_students_to_create():
    student = SOLUTION.replace(
        "    def __init__(self, keys, config):\n        self._keys = list(keys)\n        self.config = config\n",
        '    def __init__(self, keys, config):\n        """Keep the keys in ``self._keys``."""\n'
        '        raise NotImplementedError("Part 2 (the inference API): write Box.__init__().")\n')
    assert _findings(student) == []


def test_library_names_literals_parameters_and_unknown_words_are_out_of_scope():
    student = SOLUTION.replace("Double ``x``.", (
        'Double ``x`` with ``np.percentile``, ``json.dumps(x, sort_keys=True)``, ``hmac.compare_digest``, '
        '``scipy.stats.ks_2samp``, ``"ok"``, ``1e-4``, ``[0, 1)``, ``{"instances": ...}``, ``x.real``, '
        '``avg_latency_ms``, ``_count``, ``len(x)``, ``None``.'))
    assert _findings(student) == []


def test_names_prefixed_with_the_package_are_checked():
    student = SOLUTION.replace("Double ``x``.", "Double ``x``: ``deployment.box._helper``, "
                               "``deployment.box.nothing``, ``deployment.nomodule``.")
    assert _findings(student) == ["_helper deployment.box.nothing", "_helper deployment.nomodule"]


def test_a_name_in_single_backticks_is_checked_too():
    student = SOLUTION.replace("def _helper(x):", "def _renamed(x):").replace(
        "Double ``x``.", "Double `x` with `_helper`.")
    assert "_renamed _helper" in _findings(student)


def test_a_called_or_indexed_reference_is_checked_by_its_name():
    student = SOLUTION.replace("def _helper(x):", "def _renamed(x):").replace(
        "Double ``x``.", "Double ``x``: ``_helper(x) -> int``, ``self._keys[0]``.")
    assert "_renamed _helper" in _findings(student)


def _write_package(folder: Path, text: str) -> Path:
    folder.mkdir()
    (folder / "box.py").write_text(textwrap.dedent(text))
    return folder


def test_report_fails_on_a_finding_and_passes_when_the_allow_list_names_it(tmp_path, capsys):
    student = _write_package(tmp_path / "student", SOLUTION.replace("def _helper(x):", "def _renamed(x):"))
    solutions = _write_package(tmp_path / "solutions", SOLUTION)
    assert docstring_names.report(student, solutions, allowed={}) == 1
    out = capsys.readouterr().out
    assert "deployment/box.py:2: <module>: ``_helper`` is in the solutions but not in the student package" in out
    allowed = {"box.py <module> _helper": "why", "box.py Box.size _helper": "why"}
    assert docstring_names.report(student, solutions, allowed=allowed) == 0


def test_report_names_allowed_entries_that_are_fixed(tmp_path, capsys):
    student = _write_package(tmp_path / "student", SOLUTION)
    solutions = _write_package(tmp_path / "solutions", SOLUTION)
    assert docstring_names.report(student, solutions, allowed={"box.py Box.size _gone": "why"}) == 0
    assert "remove from tools/docstring_names_allowed.txt: box.py Box.size _gone" in capsys.readouterr().out


def test_stubs_without_a_docstring_are_listed():
    student = 'def f(x):\n    raise NotImplementedError("Part 1 (serialization): write f().")\n\n\n' \
              'def g(x):\n    """Documented."""\n    raise NotImplementedError("Part 1 (serialization): write g().")\n'
    assert docstring_names.stubs_without_docstring({"m.py": student}) == ["deployment/m.py:1 f"]


def test_the_allow_list_needs_three_fields_per_entry(tmp_path):
    path = tmp_path / "allowed.txt"
    path.write_text("# a comment\ninference.py InferenceAPI.health _outputs  # Part 2 fixes it\n")
    assert docstring_names.read_allowed(path) == {"inference.py InferenceAPI.health _outputs": "Part 2 fixes it"}
    path.write_text("inference.py _outputs\n")
    with pytest.raises(SystemExit, match="allowed.txt:1: write an entry as"):
        docstring_names.read_allowed(path)


def test_a_library_name_imported_over_a_package_class_name_is_the_librarys():
    box = 'class Handler:\n    """The package\'s own handler."""\n'
    log = '"""Logs with ``Handler.emit`` (logging\'s)."""\n\nfrom logging import Handler\n'
    sources = {"box.py": box, "log.py": log}
    assert docstring_names.find_missing_names(sources, sources) == []
    sources_without_import = {"box.py": box, "log.py": log.replace("from logging import Handler", "from .box import Handler")}
    assert [f.reference for f in docstring_names.find_missing_names(sources_without_import, sources_without_import)] == [
        "Handler.emit"]


def test_check_release_fails_when_a_student_docstring_names_what_the_stubs_do_not_set(tmp_path, monkeypatch, capsys):
    source = tmp_path / "solutions" / "deployment"
    source.mkdir(parents=True)
    (source / "box.py").write_text(textwrap.dedent('''
        class Box:
            """A box."""

            def __init__(self):
                """An empty box."""
                ### BEGIN SOLUTION part=1 section="1. Boxes"
                self._items = []
                ### END SOLUTION

            def size(self):
                """How many items ``self._items`` holds."""
                ### BEGIN SOLUTION part=1 section="1. Boxes"
                return len(self._items)
                ### END SOLUTION
        '''))
    monkeypatch.setattr(release, "ROOT", tmp_path)
    monkeypatch.setattr(release, "SOURCE", source)
    monkeypatch.setattr(release, "TARGET", tmp_path / "deployment")
    release.build(tmp_path / "deployment")
    assert release.check() == 1
    assert "box.py:12: Box.size: ``self._items`` is in the solutions but not in the student package" in \
        capsys.readouterr().out
    (source / "box.py").write_text((source / "box.py").read_text().replace(
        '"""An empty box."""', '"""An empty box: sets ``self._items``, a list."""'))
    release.build(tmp_path / "deployment")
    assert release.check() == 0
