"""`make demo` runs the whole story with the reference solution; this keeps it working.

Not graded: it needs every part, so it runs only against the solutions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import deployment

pytestmark = pytest.mark.skipif(
    Path(deployment.__file__).resolve().parent.parent.name != "solutions",
    reason="the demo needs every part: it runs against the solutions (pytest --impl=solutions)",
)


def test_demo_runs_every_step_and_writes_its_plots(tmp_path, capsys):
    from deployment.demo import run_demo

    status = run_demo(tmp_path)
    out = capsys.readouterr().out
    assert status == 0, out
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["ab_test.png", "canary.png", "drift.png", "latency.png"]
    assert "FAILED" not in out
    assert out.count("  [ok] ") == 6, out[-2000:]  # all six checks of the summary ran and passed
