"""The mutation check (tools/mutation.py) on a tiny package: which messages and numbers its tests check."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tools"))

import mutation  # noqa: E402  (tools/mutation.py)
import mutation_hooks  # noqa: E402  (tools/mutation_hooks.py)

CALC = '''
"""A tiny package to break."""

from __future__ import annotations

import subprocess


class CalcError(ValueError):
    """Bad input."""


GIVEN_LIMIT = 10


def mean(values):
    """The mean of ``values``; CalcError "mean of nothing" for none, "negative value" for one below 0."""
    ### BEGIN SOLUTION part=1 section="1. Means"
    if not values:
        raise CalcError("mean of nothing: give at least one value.")
    if any(v < 0 for v in values):
        raise CalcError(f"negative value in {values}.")
    return sum(values) / len(values)
    ### END SOLUTION


def count(values):
    """How many values: an int, never nudged."""
    ### BEGIN SOLUTION part=1 section="2. Counting"
    return len(values)
    ### END SOLUTION


def half(x):
    """Half of ``x``; only a child process calls it."""
    ### BEGIN SOLUTION part=2 section="1. Halves"
    return x / 2
    ### END SOLUTION


def quarter():
    """A quarter; a test waits until it is exactly 0.25, so its mutant hangs that test."""
    ### BEGIN SOLUTION part=1 section="3. Quarters"
    return 0.25
    ### END SOLUTION


def third(x):
    """A third of ``x``; only a test that always fails calls it."""
    ### BEGIN SOLUTION part=2 section="2. Thirds"
    return x / 3
    ### END SOLUTION


def given_scale(x):
    """Given code: never mutated."""
    if x > GIVEN_LIMIT:
        raise CalcError("too big.")
    return x * 2.0
'''

TESTS = '''
import subprocess
import sys
from pathlib import Path

import pytest

from deployment.calc import CalcError, count, given_scale, half, mean, quarter, third


def test_mean_of_two_values():
    assert mean([1.0, 2.0]) == pytest.approx(1.5)


def test_mean_of_nothing_says_so():
    with pytest.raises(CalcError, match="mean of nothing"):
        mean([])


def test_a_negative_value_is_refused():
    with pytest.raises(CalcError):  # the message is not checked: its mutant survives
        mean([-1.0])


def test_count():
    assert count([1, 2]) == 2


def test_half_in_a_child_process():
    code = "from deployment.calc import half; print(half(3.0))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1.5"


def test_given_code():
    assert given_scale(1.0) == 2.0


def test_waits_for_a_quarter():
    while quarter() != 0.25:
        pass


def test_skipped():
    half(1.0)
    pytest.skip("neither passes nor fails")


def test_always_fails():
    assert third(3.0) == 2.0


def test_passes_only_on_its_first_run():
    runs = Path(__file__).with_name("runs.txt")  # counted across both worker processes
    with runs.open("a") as log:
        print("run", file=log)
    with pytest.raises(CalcError):
        mean([-2.0])
    assert runs.read_text().count("run") == 1
'''


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    """One run of the check on the tiny package, with two workers: (sites, baseline, results)."""
    root = tmp_path_factory.mktemp("project")
    package = root / "solutions" / "deployment"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "calc.py").write_text(CALC)
    tests = root / "test_part1_calc.py"
    tests.write_text(TESTS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MUTATION_MIN_LIMIT_S", "2")  # the hanging mutant's test is stopped after 2 s
        result = mutation.run(package, [tests], workers=2, root=root, timeout_s=300)
    sites = {site.function + ":" + (site.text if site.kind == "message" else "return"): site for site in result.sites}
    return sites, result


def _status(outcome, key: str) -> str:
    sites, result = outcome
    return result.results[sites[key].id]["status"]


def test_a_message_a_test_matches_is_killed(outcome):
    assert _status(outcome, "mean:'mean of nothing: give at least one value.'") == "killed"


def test_a_message_no_test_matches_survives(outcome):
    assert _status(outcome, "mean:f'negative value in {values}.'") == "survived"


def test_a_test_that_fails_without_the_mutant_too_kills_nothing(outcome):
    sites, result = outcome
    survivor = result.results[sites["mean:f'negative value in {values}.'"].id]
    assert survivor["flaky"] == ["test_part1_calc.py::test_passes_only_on_its_first_run"]


def test_a_numeric_result_a_test_compares_is_killed(outcome):
    assert _status(outcome, "mean:return") == "killed"


def test_a_numeric_result_reached_only_in_a_child_process_is_killed_there(outcome):
    assert _status(outcome, "half:return") == "killed"


def test_a_mutant_only_a_failing_test_reaches_is_undetermined_not_a_survivor(outcome):
    sites, result = outcome
    assert result.baseline["test_part1_calc.py::test_always_fails"]["passed"] is False
    text, unexcused, summary = mutation.summarize(result, {}, 1.0)
    assert summary["undetermined"] == [sites["third:return"].id]
    assert sites["third:return"] not in unexcused
    assert "1 graded test(s) FAILED on the unbroken solutions (twice)" in text


def test_a_mutant_that_makes_a_test_hang_is_stopped_and_counts_as_killed(outcome):
    assert _status(outcome, "quarter:return") == "timeout"


def test_an_int_result_is_not_a_mutant(outcome):
    sites, result = outcome
    assert sites["count:return"].id not in result.results
    assert sites["count:return"] not in mutation.counted_sites(result.sites, result.baseline)


def test_given_code_has_no_sites(outcome):
    sites, _ = outcome
    assert not [key for key in sites if key.startswith("given_scale")]


def test_the_baseline_records_which_test_reaches_which_site(outcome):
    sites, result = outcome
    assert mutation.summarize(result, {}, 1.0)[2]["failing_tests"] == ["test_part1_calc.py::test_always_fails"]
    assert result.baseline["test_part1_calc.py::test_skipped"]["skipped"] is True
    reached = result.baseline["test_part1_calc.py::test_mean_of_nothing_says_so"]["hits"]
    assert reached == [sites["mean:'mean of nothing: give at least one value.'"].id]


def test_the_report_lists_survivors_by_part_and_fails_unless_excused(outcome):
    sites, result = outcome
    survivor = sites["mean:f'negative value in {values}.'"]
    text, unexcused, summary = mutation.summarize(result, {}, 1.0)
    assert unexcused == [survivor]
    assert "Part 1: 1 surviving mutant(s)" in text and "FAILED: 1 mutant(s) survive" in text
    assert f"  {survivor.id}  (calc.py:{survivor.line}, section 1, message f'negative value in {{values}}.')" in text
    assert (summary["mutants"], summary["killed"], summary["survived"]) == (6, 4, 1)
    text, unexcused, _ = mutation.summarize(result, {survivor.id: "the wording is free"}, 1.0)
    assert unexcused == [] and "excused: the wording is free" in text and "mutant(s) survive" not in text


def test_excused_mutants_are_not_rerun_and_excuses_of_killed_mutants_are_named(outcome):
    sites, result = outcome
    survivor, killed = sites["mean:f'negative value in {values}.'"], sites["mean:return"]
    skipped = mutation.Outcome(result.sites, result.baseline,
                               {**result.results, survivor.id: {"status": "excused"}}, result.timing)
    text, unexcused, summary = mutation.summarize(skipped, {survivor.id: "free", killed.id: "old"}, 1.0)
    assert unexcused == [] and summary["excused_not_rerun"] == 1
    assert "Part 1: 1 surviving mutant(s), 1 of them excused and not rerun (not listed)" in text
    assert survivor.id not in text.replace(killed.id, "")
    assert f"Excused but killed or gone (remove from mutation_excused.txt): {killed.id}" in text


def test_main_fails_on_a_survivor_and_excuse_survivors_writes_the_excused_file(outcome, tmp_path, monkeypatch, capsys):
    sites, result = outcome
    monkeypatch.setattr(mutation, "run", lambda *args, **kwargs: result)
    excused = tmp_path / "excused.txt"
    assert mutation.main(["--excused", str(excused)]) == 1
    assert mutation.main(["--excused", str(excused), "--excuse-survivors", "Part {part}: wording is free"]) == 0
    survivor = sites["mean:f'negative value in {values}.'"]
    assert mutation.read_excused(excused) == {survivor.id: "Part 1: wording is free"}
    assert mutation.main(["--excused", str(excused)]) == 0


def test_a_worker_that_dies_stops_the_others_instead_of_leaving_them_waiting(tmp_path):
    package = tmp_path / "solutions" / "deployment"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "calc.py").write_text(CALC)
    tests = tmp_path / "test_part1_dies.py"
    tests.write_text("import os\n\n\ndef test_dies():\n    os._exit(3)\n\n\ndef test_lives():\n    pass\n")
    with pytest.raises(SystemExit, match="did not finish") as stopped:
        mutation.run(package, [tests], workers=2, root=tmp_path, timeout_s=300)
    assert "another worker stopped before finishing its baseline run" in str(stopped.value)


# --- instrumentation and site ids ------------------------------------------------------------------

def _ids(source: str) -> list[str]:
    return [site.id for site in mutation.instrument(textwrap.dedent(source), "calc.py")[1]]


def test_site_ids_name_module_function_kind_and_a_hash_of_the_text():
    ids = _ids(CALC)
    assert [i.rsplit(":", 1)[0] for i in ids] == [
        "calc:mean:CalcError", "calc:mean:CalcError", "calc:mean:return", "calc:count:return", "calc:half:return",
        "calc:quarter:return", "calc:third:return"]


def test_site_ids_do_not_move_when_unrelated_code_changes():
    edited = CALC.replace("GIVEN_LIMIT = 10", "GIVEN_LIMIT = 10\nOTHER = 1\n\n\ndef extra():\n    return 1.0\n")
    edited = edited.replace("if not values:", "if len(values) == 0:  # reworded")
    assert _ids(edited) == _ids(CALC)


def test_the_same_text_twice_in_one_function_gets_numbered_ids():
    source = '''
        def f(x):
            ### BEGIN SOLUTION part=1 section="1. F"
            if x:
                raise ValueError("bad.")
            raise ValueError("bad.")
            ### END SOLUTION
        '''
    first, second = _ids(source)
    assert second == first + "~2"


def test_returns_of_generators_and_constant_returns_are_not_sites():
    source = '''
        def gen():
            ### BEGIN SOLUTION part=1 section="1. G"
            yield 1.0
            return 2.0
            ### END SOLUTION

        def flag():
            ### BEGIN SOLUTION part=1 section="1. G"
            return None
            ### END SOLUTION
        '''
    assert _ids(source) == []


def test_an_error_built_and_returned_is_a_message_site():
    source = '''
        def first_bad(rows):
            ### BEGIN SOLUTION part=2 section="2. V"
            return ValueError(f"row {rows[0]} is bad.")
            ### END SOLUTION
        '''
    assert [i.rsplit(":", 1)[0] for i in _ids(source)] == ["calc:first_bad:ValueError", "calc:first_bad:return"]


def test_the_instrumented_module_behaves_like_the_original_when_no_mutant_is_active():
    text, _ = mutation.instrument(CALC, "calc.py")
    namespace: dict = {}
    exec(compile(text, "calc.py", "exec"), namespace)
    assert namespace["mean"]([1.0, 2.0]) == 1.5 and namespace["count"]([1]) == 1
    with pytest.raises(namespace["CalcError"], match="^mean of nothing: give at least one value.$"):
        namespace["mean"]([])


# --- the run-time hooks ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (2.0, 2.002), (0.0, 1e-3), (-4.0, -4.004), (np.float32(1.0), np.float32(1.001)),
])
def test_nudge_moves_a_float_by_a_thousandth(value, expected):
    nudged = mutation_hooks.nudge(value)
    assert type(nudged) is type(value) and nudged == pytest.approx(expected)


def test_nudge_reaches_into_arrays_tuples_lists_and_dicts_and_leaves_the_rest():
    value = {"p": np.array([0.5, 0.0]), "n": 3, "name": "x", "pair": (1.0, None), "list": [2.0]}
    nudged = mutation_hooks.nudge(value)
    assert nudged["p"] == pytest.approx([0.5005, 1e-3]) and value["p"][0] == 0.5  # a copy
    assert nudged["n"] == 3 and nudged["name"] == "x"
    assert nudged["pair"] == pytest.approx((1.001, None)) and nudged["list"] == pytest.approx([2.002])


def test_nudge_moves_the_float_columns_of_a_pandas_table_and_a_float_series():
    import pandas as pd

    table = pd.DataFrame({"feature": ["a", "b"], "p_value": [0.5, 0.0], "n": [1, 2]})
    assert mutation_hooks.holds_numbers(table)
    nudged = mutation_hooks.nudge(table)
    assert nudged["p_value"].tolist() == pytest.approx([0.5005, 1e-3]) and table["p_value"][0] == 0.5
    assert nudged["n"].tolist() == [1, 2] and nudged["feature"].tolist() == ["a", "b"]
    assert mutation_hooks.nudge(pd.Series([2.0])).tolist() == pytest.approx([2.002])
    assert not mutation_hooks.holds_numbers(pd.Series([1, 2]))


@pytest.mark.parametrize("value", [3, True, "1.5", None, float("nan"), float("inf"), np.array([1, 2]), (1, "a")])
def test_values_without_a_finite_float_are_not_numbers(value):
    assert not mutation_hooks.holds_numbers(value)
    assert mutation_hooks.nudge(value) is value


def test_hooks_change_only_the_active_site_and_only_while_recording():
    try:
        mutation_hooks.start_recording("site-a")
        assert mutation_hooks.message("site-a", "row 1 is bad.") == "bad input."
        assert mutation_hooks.message("site-b", "row 1 is bad.") == "row 1 is bad."
        assert mutation_hooks.number("site-a", 2.0) == pytest.approx(2.002)
        mutation_hooks.stop_recording()
        assert mutation_hooks.message("site-a", "row 1 is bad.") == "row 1 is bad."
    finally:
        mutation_hooks.stop_recording()
        mutation_hooks.HITS.clear()
        mutation_hooks.NUMBERS.clear()


def test_the_excused_file_needs_a_reason_per_site(tmp_path):
    path = tmp_path / "excused.txt"
    path.write_text("# comment\ncalc:mean:CalcError:abc123  # wording is free\n")
    assert mutation.read_excused(path) == {"calc:mean:CalcError:abc123": "wording is free"}
    path.write_text("calc:mean:CalcError:abc123\n")
    with pytest.raises(SystemExit, match="excused.txt:1: write"):
        mutation.read_excused(path)
