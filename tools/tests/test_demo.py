"""`make demo` with a package whose parts are not all written: one sentence, exit status 1, no traceback.

The full demo with the reference solution runs in the release proof
(`make release-proof`, the last step of `make test`), inside the student release.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from deployment.demo import not_written  # demo.py is given code: the same in both packages

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_stops_with_one_sentence_at_the_first_part_that_is_not_written(tmp_path):
    package = tmp_path / "package"
    shutil.copytree(ROOT / "solutions" / "deployment", package / "deployment",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "deployment" / "registry.py", package / "deployment" / "registry.py")  # Part 4's stubs
    env = {**os.environ, "PYTHONSAFEPATH": "1", "PYTHONPATH": str(package)}
    result = subprocess.run([sys.executable, "-m", "deployment", "demo", "--out", str(tmp_path / "out")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("The demo stopped at step 2 because Part 4 (the model registry) is not written yet: ")
    assert last.endswith("check it with: make grade PART=4") or "check it with: make grade PART=4 SECTION=" in last
    assert last.count(". ") == 0  # one sentence


def test_the_sentence_names_the_function_and_the_stubs_own_check_command():
    stub = NotImplementedError("Part 2 (the inference API): write InferenceAPI.validate(). Read notebooks/"
                               "02_inference_api.ipynb, section '2. Validating requests'. "
                               "Check it with: make grade PART=2 SECTION=2")
    assert not_written(stub, 3) == (
        "The demo stopped at step 3 because Part 2 (the inference API) is not written yet: "
        "InferenceAPI.validate() raises NotImplementedError; write it, then check it with: make grade PART=2 SECTION=2")


def test_without_a_check_command_in_the_stub_the_sentence_gives_the_parts():
    stub = NotImplementedError("Part 5 (A/B testing): write user_bucket(). Read notebooks/05_ab_testing.ipynb, "
                               "section '2. Routing users to versions'.")
    assert not_written(stub, 6).endswith("user_bucket() raises NotImplementedError; write it, then check it with: "
                                         "make grade PART=5")


def test_a_not_implemented_error_that_is_no_stub_is_still_one_line():
    assert not_written(NotImplementedError("my own placeholder"), 5) == (
        "The demo stopped at step 5: something is not written yet (NotImplementedError: my own placeholder).")
