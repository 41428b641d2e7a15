"""The mutation check: does a graded test fail when a refusal message or a numeric result is wrong?

A test suite can pass on the solutions and still check nothing of what a
student could get wrong: a message nobody reads, a number compared with a
loose tolerance or not at all. This tool breaks the solutions one small
thing at a time, in a temporary copy, and reruns the graded tests:

* every **refusal message** inside a solution block (the first argument of
  ``SomeError(...)``: ``raise ValidationError(f"row {r} ...")``, also an
  error that is built and returned) becomes the generic ``"bad input."``,
  keeping the exception type;
* every **numeric result** inside a solution block (``return <value>``
  where the value turns out to be a float, a numpy float array, a pandas
  table of floats, or a tuple/list/dict of them) is made relatively 1e-3
  wrong at run time (0.0 becomes 1e-3); a
  return site that only ever gives ints, strings, None or other objects is
  not counted.

Each such *site* is a mutant. A mutant is *killed* when a graded test that
reaches the site fails with the mutant active, and *survives* when every
test that reaches it still passes (or no test reaches it): the message or
the number is not checked. ``make mutation-check`` fails when a mutant
survives that ``tools/mutation_excused.txt`` does not excuse (one site id
per line, then ``# why``). Only a test's own setup and call run mutated
(fixtures shared by a module or the session are made from the unbroken
solutions); a test that fails with the mutant and again without it is
flaky and kills nothing; a rerun that takes far longer than the test did
is stopped and counts as a kill (the mutant made it hang); a mutant that
only a test failing on the unbroken solutions reaches is *undetermined*
(reported, never a failure).

Site ids are stable across unrelated edits: ``module:function:kind:hash``,
the kind being the exception's name or ``return``, the hash a short digest
of the message (or returned expression) as written, with ``~2``, ``~3``
for repeats of the same text in one function.

Excused mutants are not rerun (``--recheck-excused`` reruns them, to find
excuses that are no longer needed); ``--excuse-survivors REASON`` appends
today's survivors to the excused file.

How it stays fast: every site is instrumented once (``tools/mutation_hooks.py``
holds the switch, the *active* site), the graded tests run once to record
which test reaches which site, then, in the same pytest sessions, only the
tests that reach a site are rerun with it active, cheapest first, stopping
at the first failure. Two worker sessions share the tests and then the
mutants, each taking the next one when it is free.

Usage::

    python tools/mutation.py                 # the whole package, 2 workers
    python tools/mutation.py --workers 1 --json build/mutation.json
"""

from __future__ import annotations

import argparse
import ast
import builtins
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
if str(TOOLS) not in sys.path:
    sys.path.append(str(TOOLS))

import release  # noqa: E402  (tools/release.py: the solution markers)

PACKAGE = "deployment"
EXCUSED = TOOLS / "mutation_excused.txt"
HOOKS_MODULE = "mutation_hooks"
HOOKS_NAME = "_mutation"
EXCEPTIONS = {name for name, value in vars(builtins).items()
              if isinstance(value, type) and issubclass(value, BaseException)}
WAIT_FOR_WORKERS_S = 1800  # a worker waits at most this long for the others' baselines
# A rerun may take max(10 s, 5 x its baseline time): longer is a timeout, which kills the mutant.
TEST_LIMIT_S = (float(os.environ.get("MUTATION_MIN_LIMIT_S", "10")), 5.0)


# --- sites: finding and instrumenting them ---------------------------------------------------------

@dataclass
class Site:
    """One place the check breaks: a refusal message or a returned value inside a solution block."""

    id: str
    kind: str  # "message" or "number"
    module: str  # file name in the package, e.g. "inference.py"
    function: str  # qualified name of the function it is in
    part: int
    section: str
    line: int  # in the solution file
    text: str  # the message or the returned expression, as written (shortened)
    exception: str | None = None


@dataclass
class _Block:
    start: int
    end: int
    part: int
    section: str


def solution_blocks(source: str) -> list[_Block]:
    """The BEGIN/END SOLUTION line ranges of a file (1-based, inclusive)."""
    blocks, begin = [], None
    for number, line in enumerate(source.splitlines(), 1):
        match = release.BEGIN.match(line)
        if match:
            begin = (number, int(match["part"]), match["section"])
        elif release.END.match(line) and begin is not None:
            blocks.append(_Block(begin[0], number, begin[1], begin[2]))
            begin = None
    return blocks


def _is_generator(function: ast.AST) -> bool:
    """True when ``function`` itself (not a nested function) yields."""
    def walk(node: ast.AST):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            if isinstance(child, (ast.Yield, ast.YieldFrom)):
                return True
            if walk(child):
                return True
        return False
    return walk(function)


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _is_exception(name: str | None) -> bool:
    return name is not None and (name in EXCEPTIONS or name.endswith(("Error", "Exception")))


def _shorten(text: str, limit: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _Instrumenter(ast.NodeTransformer):
    """Route each site of the solution blocks through ``mutation_hooks`` and list the sites."""

    def __init__(self, module: str, blocks: list[_Block]) -> None:
        self.module = module
        self.blocks = blocks
        self.scope: list[tuple[str, bool]] = []  # (name, is a generator function)
        self.sites: list[Site] = []
        self._seen: Counter[str] = Counter()

    def _block(self, node: ast.AST) -> _Block | None:
        return next((b for b in self.blocks if b.start < node.lineno < b.end), None)

    def _site(self, kind: str, node: ast.AST, block: _Block, text: str, label: str, exception: str | None) -> Site:
        function = ".".join(name for name, _ in self.scope) or "<module>"
        digest = hashlib.sha1(text.encode()).hexdigest()[:6]
        base = f"{Path(self.module).stem}:{function}:{label}:{digest}"
        self._seen[base] += 1
        site_id = base if self._seen[base] == 1 else f"{base}~{self._seen[base]}"
        site = Site(site_id, kind, self.module, function, block.part, block.section, node.lineno,
                    _shorten(text), exception)
        self.sites.append(site)
        return site

    @staticmethod
    def _hook(name: str, site: Site, value: ast.expr) -> ast.Call:
        return ast.Call(ast.Attribute(ast.Name(HOOKS_NAME, ast.Load()), name, ast.Load()),
                        [ast.Constant(site.id), value], [])

    def _visit_scope(self, node: ast.AST, generator: bool) -> ast.AST:
        self.scope.append((node.name, generator))
        self.generic_visit(node)
        self.scope.pop()
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._visit_scope(node, _is_generator(node))

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._visit_scope(node, _is_generator(node))

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        return self._visit_scope(node, False)

    def visit_Return(self, node: ast.Return) -> ast.AST:
        text = ast.unparse(node.value) if node.value is not None else ""
        self.generic_visit(node)
        block = self._block(node)
        in_function = bool(self.scope) and not self.scope[-1][1]
        if node.value is None or block is None or not in_function or self._constant(node.value):
            return node
        site = self._site("number", node, block, text, "return", None)
        node.value = self._hook("number", site, node.value)
        return node

    @staticmethod
    def _constant(value: ast.expr) -> bool:
        """``return None`` / ``return True`` / ``return "ok"``: never a number worth nudging."""
        return isinstance(value, ast.Constant) and not isinstance(value.value, float)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        text = ast.unparse(node.args[0]) if node.args else ""
        self.generic_visit(node)
        name = _callee(node)
        block = self._block(node)
        if block is None or not _is_exception(name) or not node.args or isinstance(node.args[0], ast.Starred):
            return node
        site = self._site("message", node, block, text, name, name)
        node.args[0] = self._hook("message", site, node.args[0])
        return node


def instrument(source: str, module: str) -> tuple[str, list[Site]]:
    """The instrumented source of one solution module and its sites (none: the source unchanged)."""
    blocks = solution_blocks(source)
    if not blocks:
        return source, []
    tree = ast.parse(source)
    instrumenter = _Instrumenter(module, blocks)
    tree = instrumenter.visit(tree)
    if not instrumenter.sites:
        return source, []
    position = 0
    for position, node in enumerate(tree.body):  # after the docstring and the __future__ imports
        is_docstring = position == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if not is_docstring and not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            break
    tree.body.insert(position, ast.Import([ast.alias(HOOKS_MODULE, HOOKS_NAME)]))
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n", instrumenter.sites


def make_instrumented_copy(package: Path, home: Path) -> list[Site]:
    """Copy ``package`` into ``home/deployment`` with every site instrumented; return the sites."""
    target = home / PACKAGE
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__"))
    sites: list[Site] = []
    for path in sorted(target.rglob("*.py")):
        module = str(path.relative_to(target))
        text, found = instrument(path.read_text(), module)
        if found:
            path.write_text(text)
            sites += found
    return sites


# --- the worker: a pytest plugin inside each pytest session ------------------------------------

@dataclass
class TestRecord:
    """What one graded test did in the baseline run."""

    passed: bool = True  # every phase passed: the test can kill a mutant
    skipped: bool = False  # skipped (or xfail): it neither passes nor fails
    seconds: float = 0.0
    hits: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)


class _Parents:
    """Stands for "the next test is a sibling": the test's own fixtures are torn down, its module's kept."""

    def __init__(self, item: Any) -> None:
        self._chain = item.listchain()[:-1]

    def listchain(self) -> list[Any]:
        return self._chain


class _RerunTimeout(Exception):
    """A rerun took far longer than the test's baseline: the mutant made it hang (it counts as killed)."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _RerunTimeout("the test ran far longer than without the mutant")


class Worker:
    """The pytest plugin of one worker session: baseline, then a share of the mutants.

    Registered by ``pytest_configure`` below when ``MUTATION_DIR`` is set.
    """

    def __init__(self, work: Path, index: int, workers: int) -> None:
        import mutation_hooks

        self.hooks = mutation_hooks
        self.work, self.index, self.workers = work, index, workers
        self.active: str | None = None
        self.record: TestRecord | None = None
        self.child_hits = work / f"hits-{index}"
        self.child_hits.mkdir(exist_ok=True)
        os.environ["MUTATION_HITS_DIR"] = str(self.child_hits)
        home = str(work / "home")
        sys.path.insert(0, home)
        os.environ["PYTHONPATH"] = os.pathsep.join([home, str(TOOLS)] + [
            p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

    # Sites count, and the mutant is active, only in a test's own setup and call.
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item):
        self.hooks.start_recording(self.active)
        try:
            return (yield)
        finally:
            self.hooks.stop_recording()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        self.hooks.start_recording(self.active)
        try:
            return (yield)
        finally:
            self.hooks.stop_recording()

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        """A module- or session-wide fixture is made from the unbroken solutions (other tests share it)."""
        if fixturedef.scope == "function" or not self.hooks.RECORDING:
            return (yield)
        active = self.hooks.ACTIVE
        self.hooks.stop_recording()
        try:
            return (yield)
        finally:
            self.hooks.start_recording(active)

    def pytest_runtest_logreport(self, report):
        if self.record is not None:
            self.record.seconds += report.duration
            if not report.passed:
                self.record.passed = False
            if report.skipped:
                self.record.skipped = True

    def _collect_child_hits(self) -> None:
        for path in self.child_hits.glob("*.hits"):
            for line in path.read_text().splitlines():
                kind, _, site = line.partition(" ")
                (self.hooks.NUMBERS if kind == "number" else self.hooks.HITS).add(site)
            path.unlink()

    def _claim(self, name: str) -> bool:
        """True for the one worker that creates ``claims/name`` first: the workers share one queue."""
        try:
            os.close(os.open(self.work / "claims" / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            return False

    def _baseline_one(self, session, item) -> TestRecord:
        """Run ``item`` as pytest would, recording the sites its setup and call reach."""
        try:
            session._setupstate.teardown_exact(item)  # what the last test left that this one does not share
        except Exception:  # noqa: BLE001  (reported with the test that made it)
            pass
        self.hooks.HITS.clear()
        self.hooks.NUMBERS.clear()
        self.record = TestRecord()
        item.ihook.pytest_runtest_protocol(item=item, nextitem=_Parents(item))
        self._collect_child_hits()
        record, self.record = self.record, None
        record.hits, record.numbers = sorted(self.hooks.HITS), sorted(self.hooks.NUMBERS)
        return record

    def _write(self, name: str, data: Any) -> None:
        temporary = self.work / f".{name}.tmp"
        temporary.write_text(json.dumps(data))
        temporary.rename(self.work / name)

    def _wait_for(self, names: list[str]) -> None:
        deadline = time.monotonic() + WAIT_FOR_WORKERS_S
        while not all((self.work / name).exists() for name in names):
            if (self.work / "abort").exists():
                raise SystemExit("mutation: another worker stopped before finishing its baseline run.")
            if time.monotonic() > deadline:
                raise SystemExit(f"mutation: waited {WAIT_FOR_WORKERS_S} s for the other workers' baseline runs.")
            time.sleep(0.05)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if session.testsfailed:
            (self.work / "abort").touch()
            raise session.Interrupted("mutation: the graded tests could not be collected.")
        started = time.monotonic()
        items = session.items
        (self.work / "claims").mkdir(exist_ok=True)
        baseline: dict[str, dict] = {}
        for number, item in enumerate(items):  # in collection order, each test by whichever worker is free
            if self._claim(f"test-{number}"):
                baseline[item.nodeid] = asdict(self._baseline_one(session, item))
        for item in items:  # a test that failed may be flaky on a loaded machine: one more chance
            record = baseline.get(item.nodeid)
            if record is not None and not record["passed"] and not record["skipped"]:
                baseline[item.nodeid] = asdict(self._baseline_one(session, item))
        self._write(f"baseline-{self.index}.json", baseline)
        baseline_s = time.monotonic() - started

        self._wait_for([f"baseline-{w}.json" for w in range(self.workers)])
        started = time.monotonic()
        plan = make_plan(self.work, self.workers)
        by_id = {item.nodeid: item for item in items}
        results = {}
        for number, (site_id, tests) in enumerate(plan):
            if self._claim(f"mutant-{number}"):
                results[site_id] = self._run_mutant(session, site_id, [(by_id[t], s) for t, s in tests])
        try:
            session._setupstate.teardown_exact(None)
        except Exception:  # noqa: BLE001  (a shared fixture's teardown failing: the results stand)
            pass
        timing = {"baseline_s": round(baseline_s, 1), "mutants_s": round(time.monotonic() - started, 1),
                  "cpu_s": round(time.process_time(), 1)}
        self._write(f"results-{self.index}.json", {"timing": timing, "results": results})
        return True

    def _run_mutant(self, session, site_id: str, tests: list[tuple[Any, float]]) -> dict:
        """Rerun ``tests`` with ``site_id`` active until one fails: the mutant is killed, or it survives.

        A test that fails with the mutant is run once more without it: if it
        fails again, it is flaky (or was broken by an earlier mutant), its
        failure proves nothing, and the next test is tried.
        """
        started = time.monotonic()
        result = {"status": "survived", "by": None, "tests_run": 0, "flaky": []}
        for item, baseline_s in tests:
            result["tests_run"] += 1
            limit_s = max(TEST_LIMIT_S[0], TEST_LIMIT_S[1] * baseline_s)
            outcome = self._rerun(session, item, site_id, limit_s)
            if outcome == "passed":
                continue
            if self._rerun(session, item, None, limit_s) != "passed":
                result["flaky"].append(item.nodeid)
                continue
            result.update(status=outcome, by=item.nodeid)
            break
        result["seconds"] = round(time.monotonic() - started, 3)
        return result

    def _rerun(self, session, item, site_id: str | None, limit_s: float) -> str:
        """Run one test again with ``site_id`` active (None: none): "passed", "killed" or "timeout".

        The time limit also covers tearing down what the previous test left
        (a server an earlier mutant broke may hang on its way down).
        """
        from _pytest.runner import runtestprotocol

        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit_s)
        try:
            try:
                session._setupstate.teardown_exact(item)  # what the last test left that this one does not share
            except Exception:  # noqa: BLE001  (a fixture's teardown failing, or timing out, after an earlier mutant)
                pass
            self.active = site_id
            reports = runtestprotocol(item, log=False, nextitem=_Parents(item))
        except _RerunTimeout:
            return "timeout"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            self.active = None
            for path in self.child_hits.glob("*.hits"):
                path.unlink()
        if any(_timed_out(r) for r in reports):
            return "timeout"
        return "killed" if any(r.failed for r in reports) else "passed"


def _timed_out(report) -> bool:
    return report.failed and "_RerunTimeout" in str(report.longrepr)


def pytest_configure(config) -> None:
    """When this module is loaded with ``-p mutation`` in a worker, register the worker."""
    if os.environ.get("MUTATION_DIR"):
        worker = Worker(Path(os.environ["MUTATION_DIR"]), int(os.environ["MUTATION_WORKER"]),
                        int(os.environ["MUTATION_WORKERS"]))
        config.pluginmanager.register(worker, "mutation-worker")


# --- the plan: which tests may kill which mutant ---------------------------------------------------

def load_baseline(work: Path, workers: int) -> dict[str, dict]:
    baseline: dict[str, dict] = {}
    for index in range(workers):
        baseline.update(json.loads((work / f"baseline-{index}.json").read_text()))
    return baseline


def load_sites(work: Path) -> list[Site]:
    return [Site(**site) for site in json.loads((work / "sites.json").read_text())]


def counted_sites(sites: list[Site], baseline: dict[str, dict]) -> list[Site]:
    """Every message site, and the return sites that gave a number in some test."""
    numbers = {site for record in baseline.values() for site in record["numbers"]}
    return [s for s in sites if s.kind == "message" or s.id in numbers]


def covering_tests(site: Site, baseline: dict[str, dict]) -> list[tuple[str, float]]:
    """The passing tests that reach ``site`` (for a number: where it returned one), fastest first."""
    field_name = "hits" if site.kind == "message" else "numbers"
    found = [(test, record["seconds"]) for test, record in baseline.items()
             if record["passed"] and site.id in record[field_name]]
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


def blocking_tests(site: Site, baseline: dict[str, dict]) -> list[str]:
    """The tests that reach ``site`` but failed on the unbroken solutions: they might have killed it."""
    field_name = "hits" if site.kind == "message" else "numbers"
    return sorted(test for test, record in baseline.items()
                  if not record["passed"] and not record["skipped"] and site.id in record[field_name])


def make_plan(work: Path, workers: int) -> list[tuple[str, list[tuple[str, float]]]]:
    """Each counted mutant to run with its covering tests; the costliest first, so the workers finish together.

    The sites listed in ``skip.json`` (excused ones) are left out.
    """
    baseline = load_baseline(work, workers)
    skip = set(json.loads((work / "skip.json").read_text())) if (work / "skip.json").exists() else set()
    plan = [(site.id, covering_tests(site, baseline)) for site in counted_sites(load_sites(work), baseline)
            if site.id not in skip]
    return sorted(plan, key=lambda entry: (-sum(s for _, s in entry[1]), entry[0]))


# --- the coordinator ----------------------------------------------------------------------------

def read_excused(path: Path) -> dict[str, str]:
    """``site id -> why`` from the excused file; every entry must say why."""
    if not path.exists():
        return {}
    excused = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        entry, _, why = line.partition("#")
        if not entry.strip():
            continue
        if not why.strip() or len(entry.split()) != 1:
            raise SystemExit(f"{path.name}:{number}: write `site-id  # why it may survive`.")
        excused[entry.strip()] = why.strip()
    return excused


@dataclass
class Outcome:
    """What one run of the check found."""

    sites: list[Site]  # every site of the solution blocks (counted or not)
    baseline: dict[str, dict]  # test id -> TestRecord fields
    results: dict[str, dict]  # site id -> {"status": killed|timeout|survived|excused, "by", "tests_run", ...}
    timing: list[dict]  # per worker: baseline_s, mutants_s, cpu_s


def run(package: Path, tests: list[Path], *, workers: int, root: Path, log: Path | None = None,
        skip: frozenset[str] | set[str] = frozenset(), timeout_s: float = 3600) -> Outcome:
    """Instrument ``package`` in a temporary folder and run the worker sessions on ``tests`` from ``root``.

    The mutants in ``skip`` (the excused ones) are not run: their status is ``"excused"``.
    """
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        work = Path(tmp)
        sites = make_instrumented_copy(package, work / "home")
        (work / "sites.json").write_text(json.dumps([asdict(s) for s in sites]))
        (work / "skip.json").write_text(json.dumps(sorted(skip)))
        env = dict(os.environ)
        env.update(
            MUTATION_DIR=str(work), MUTATION_WORKERS=str(workers), DEPLOYMENT_IMPL=str(work / "home"),
            PYTHONPATH=os.pathsep.join([str(work / "home"), str(TOOLS)] + [
                p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]),
            PYTHONDONTWRITEBYTECODE="1",
        )
        for name in ("MUTATION_ACTIVE", "MUTATION_HITS_DIR"):
            env.pop(name, None)
        command = [sys.executable, "-m", "pytest", *map(str, tests), "-p", "mutation", "-p", "no:cacheprovider",
                   "-p", "no:nbval", "-q", "--no-header"]
        logs = [open(work / f"worker-{w}.log", "w") for w in range(workers)]
        processes = [subprocess.Popen(command, cwd=root, env={**env, "MUTATION_WORKER": str(w)},
                                      stdout=logs[w], stderr=subprocess.STDOUT) for w in range(workers)]
        deadline = time.monotonic() + timeout_s
        try:
            while any(process.poll() is None for process in processes):
                if time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(command, timeout_s)
                for w, process in enumerate(processes):  # a worker that died: the others must not wait for it
                    if process.poll() is not None and not (work / f"results-{w}.json").exists():
                        (work / "abort").touch()
                time.sleep(0.2)
        except subprocess.TimeoutExpired:
            for process in processes:
                process.kill()
                process.wait()
        finally:
            for handle in logs:
                handle.close()
        text = "\n".join((work / f"worker-{w}.log").read_text() for w in range(workers))
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(text)
        missing = [w for w in range(workers) if not (work / f"results-{w}.json").exists()]
        if missing:
            raise SystemExit(f"mutation: worker {missing[0]} did not finish; the end of the workers' output:\n"
                             f"{text[-4000:]}")
        results: dict[str, dict] = {site: {"status": "excused"} for site in skip}
        timing = []
        for w in range(workers):
            written = json.loads((work / f"results-{w}.json").read_text())
            results.update(written["results"])
            timing.append(written["timing"])
        return Outcome(sites, load_baseline(work, workers), results, timing)


def summarize(outcome: Outcome, excused: dict[str, str], seconds: float) -> tuple[str, list[Site], dict]:
    """The report's text, the survivors that are not excused, and a JSON-ready summary."""
    baseline, results = outcome.baseline, outcome.results
    counted = counted_sites(outcome.sites, baseline)
    status = {site.id: results.get(site.id, {}).get("status", "survived") for site in counted}
    for site in counted:  # a survivor that a failing test reaches may not be one: say so, but do not fail
        if status[site.id] == "survived" and blocking_tests(site, baseline):
            status[site.id] = "undetermined"
    undetermined = [s for s in counted if status[s.id] == "undetermined"]
    survivors = sorted((s for s in counted if status[s.id] in ("survived", "excused")),
                       key=lambda s: (s.part, s.module, s.line))
    unexcused = [s for s in survivors if s.id not in excused]
    killed = [s for s in counted if status[s.id] in ("killed", "timeout")]
    not_rerun = [s for s in counted if status[s.id] == "excused"]
    observed = [s for s in counted if status[s.id] == "survived"]
    failing = sorted(test for test, record in baseline.items() if not record["passed"] and not record["skipped"])
    uncounted = sum(1 for s in outcome.sites if s.kind == "number") - sum(1 for s in counted if s.kind == "number")
    kinds = Counter(s.kind for s in counted)
    cpu = sum(t["cpu_s"] for t in outcome.timing)
    lines = [
        f"mutation check: {len(counted)} mutants ({kinds['message']} refusal messages, {kinds['number']} numeric "
        f"results) in the solution blocks; {len(baseline)} graded tests; {seconds:.0f} s "
        f"(workers' CPU {cpu:.0f} s; baseline {max(t['baseline_s'] for t in outcome.timing):.0f} s, "
        f"mutants {max(t['mutants_s'] for t in outcome.timing):.0f} s).",
        f"  killed {len(killed)}, survived {len(observed)} ({len([s for s in observed if s.id in excused])} of them "
        f"excused); {len(not_rerun)} excused mutants not rerun; {uncounted} return sites never returned a number "
        "(not counted).",
    ]
    if failing:
        lines.append(f"  {len(failing)} graded test(s) FAILED on the unbroken solutions (twice) and could kill "
                     f"nothing; {len(undetermined)} mutant(s) only they could have killed are undetermined:")
        lines += [f"    {test}" for test in failing]
        lines += [f"    undetermined: {site.id}" for site in undetermined]
    by_part: dict[int, list[Site]] = defaultdict(list)
    for site in survivors:
        by_part[site.part].append(site)
    for part in sorted(by_part):
        skipped = sum(1 for site in by_part[part] if status[site.id] == "excused")
        lines.append(f"Part {part}: {len(by_part[part])} surviving mutant(s)"
                     + (f", {skipped} of them excused and not rerun (not listed)" if skipped else ""))
        for site in by_part[part]:
            if status[site.id] == "excused":
                continue
            reach = len(covering_tests(site, baseline))
            what = f"message {site.text}" if site.kind == "message" else f"returns {site.text}"
            note = f"excused: {excused[site.id]}" if site.id in excused else (
                f"{reach} test(s) reach it, none failed" if reach else "no graded test reaches it")
            section = site.section.split(".")[0]
            lines.append(f"  {site.id}  ({site.module}:{site.line}, section {section}, {what})  [{note}]")
    stale = sorted(i for i in excused if i not in status or status[i] in ("killed", "timeout"))
    if stale:
        lines.append(f"Excused but killed or gone (remove from {EXCUSED.name}): " + ", ".join(stale))
    if unexcused:
        lines.append(f"FAILED: {len(unexcused)} mutant(s) survive: a graded test should check that message or number "
                     f"(or excuse the site, with the reason, in tools/{EXCUSED.name}).")
    summary = {
        "seconds": round(seconds, 1), "timing": outcome.timing, "mutants": len(counted),
        "messages": kinds["message"], "numbers": kinds["number"], "killed": len(killed),
        "survived": len(observed), "excused_not_rerun": len(not_rerun), "undetermined": [s.id for s in undetermined],
        "unexcused": [s.id for s in unexcused], "failing_tests": failing,
        "baseline_test_seconds": round(sum(r["seconds"] for r in baseline.values()), 1),
        "sites": [dict(asdict(s), result=results.get(s.id), tests=len(covering_tests(s, baseline)))
                  for s in counted],
    }
    return "\n".join(lines), unexcused, summary


def excuse(path: Path, sites: list[Site], reason: str) -> None:
    """Append ``sites`` to the excused file, each with ``reason`` (``{part}``, ``{kind}``... name its fields)."""
    lines = [f"{site.id}  # {reason.format_map(asdict(site))}" for site in sites]
    existing = path.read_text() if path.exists() else EXCUSED_HEADER
    if existing and not existing.endswith("\n"):
        existing += "\n"
    path.write_text(existing + "".join(line + "\n" for line in lines))


EXCUSED_HEADER = """\
# Mutants that may survive the mutation check (python3 tools/mutation.py, make mutation-check).
# One site id per line, then "# why": a message or number that no graded test needs to check.
# An id is module:function:kind:hash (the hash is of the message or returned expression as written).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=ROOT / "solutions" / PACKAGE,
                        help="the reference package to break (default: solutions/deployment)")
    parser.add_argument("--tests", type=Path, nargs="+",
                        default=sorted((ROOT / "tests").glob("test_part*_*.py")), help="the graded test files")
    parser.add_argument("--root", type=Path, default=ROOT, help="the folder pytest runs in")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--excused", type=Path, default=EXCUSED)
    parser.add_argument("--recheck-excused", action="store_true",
                        help="also rerun the excused mutants, to find excuses that are no longer needed")
    parser.add_argument("--excuse-survivors", metavar="REASON",
                        help="append every unexcused survivor to the excused file with this reason "
                        "({part}, {kind}, {module}, {function} are the site's)")
    parser.add_argument("--json", type=Path, help="also write the full result here")
    parser.add_argument("--log", type=Path, help="write the worker sessions' pytest output here")
    args = parser.parse_args(argv)
    excused = read_excused(args.excused)
    started = time.monotonic()
    outcome = run(args.package.resolve(), [t.resolve() for t in args.tests], workers=args.workers,
                  root=args.root.resolve(), log=args.log,
                  skip=frozenset() if args.recheck_excused else frozenset(excused))
    text, unexcused, summary = summarize(outcome, excused, time.monotonic() - started)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    if args.excuse_survivors and unexcused:
        excuse(args.excused, unexcused, args.excuse_survivors)
        print(f"Excused {len(unexcused)} survivor(s) in {args.excused}.")
        return 0
    return 1 if unexcused else 0


if __name__ == "__main__":
    sys.exit(main())
