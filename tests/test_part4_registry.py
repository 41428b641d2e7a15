"""Part 4: the model registry, versions and stages kept safely on disk.

Read with notebooks/04_model_registry.ipynb. Run just this part with
``pytest -m part4`` (or ``make grade PART=4``).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from deployment import (
    LinearRegression,
    ModelFormatError,
    ModelNotFoundError,
    ModelRegistry,
    ValidationError,
    load_dataset,
)

pytestmark = pytest.mark.part4

DIABETES = load_dataset("diabetes", seed=0)
START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


class StepClock:
    """A clock that moves one minute forward every time it is read."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start - timedelta(minutes=1)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def _model(alpha: float) -> LinearRegression:
    """A small fitted model; each alpha gives different coefficients, so versions are told apart."""
    return LinearRegression(alpha=alpha).fit(DIABETES.X_train, DIABETES.y_train)


MODELS = {alpha: _model(alpha) for alpha in (0.0, 1.0, 2.0, 3.0)}


def _predictions(model) -> np.ndarray:
    return model.predict(DIABETES.X_test[:5])


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def registry(root) -> ModelRegistry:
    return ModelRegistry(root, clock=StepClock())


@pytest.fixture
def three_versions(registry) -> ModelRegistry:
    """'diabetes' at 1.0.0, 1.1.0 and 2.0.0, each a different model."""
    for version, alpha in (("1.0.0", 0.0), ("1.1.0", 1.0), ("2.0.0", 2.0)):
        registry.register_model("diabetes", version, MODELS[alpha], metadata={"accuracy": 0.5 + alpha / 10})
    return registry


# --- registering and loading ---------------------------------------------------------------

def test_registered_model_loads_back_with_identical_predictions(registry):
    registry.register_model("diabetes", "1.0.0", MODELS[1.0])
    loaded = registry.load_model("diabetes", "1.0.0")
    np.testing.assert_array_equal(_predictions(loaded), _predictions(MODELS[1.0]))


def test_register_returns_the_model_file_inside_the_root(registry, root):
    path = registry.register_model("diabetes", "1.0.0", MODELS[0.0])
    assert path.is_file() and path.suffix == ".json"
    assert path.resolve().is_relative_to(root.resolve())


def test_each_version_loads_its_own_model(three_versions):
    for version, alpha in (("1.0.0", 0.0), ("1.1.0", 1.0), ("2.0.0", 2.0)):
        loaded = three_versions.load_model("diabetes", version)
        np.testing.assert_array_equal(_predictions(loaded), _predictions(MODELS[alpha]))


def test_a_new_registry_on_the_same_folder_sees_everything(three_versions, root):
    three_versions.promote_model("diabetes", "1.0.0", "production", reason="first")
    three_versions.promote_model("diabetes", "1.1.0", "staging")
    reopened = ModelRegistry(root)
    assert reopened.list_models() == ["diabetes"]
    assert reopened.list_versions("diabetes") == ["1.0.0", "1.1.0", "2.0.0"]
    assert reopened.get_stages("diabetes") == {"1.0.0": "production", "1.1.0": "staging", "2.0.0": "none"}
    assert reopened.get_stage_history("diabetes") == three_versions.get_stage_history("diabetes")
    assert reopened.get_metadata("diabetes", "1.1.0") == three_versions.get_metadata("diabetes", "1.1.0")
    np.testing.assert_array_equal(_predictions(reopened.load_model("diabetes", "production")),
                                  _predictions(MODELS[0.0]))


def test_metadata_keeps_registered_at_the_models_facts_and_user_keys(root):
    registry = ModelRegistry(root, clock=lambda: START)
    registry.register_model("diabetes", "1.1.0", MODELS[1.0], metadata={
        "accuracy": 0.47, "trained_at": "2026-01-04T18:30:00Z", "data_sha256": "ab12", "parent": "1.0.0",
    })
    metadata = registry.get_metadata("diabetes", "1.1.0")
    assert metadata["registered_at"] == "2026-01-05T09:00:00Z"
    assert metadata["trained_at"] == "2026-01-04T18:30:00Z"
    assert metadata["accuracy"] == 0.47
    assert metadata["data_sha256"] == "ab12" and metadata["parent"] == "1.0.0"


def test_trained_at_defaults_to_the_registry_clock(root):
    registry = ModelRegistry(root, clock=lambda: START)
    registry.register_model("diabetes", "1.0.0", MODELS[0.0])
    assert registry.get_metadata("diabetes", "1.0.0")["trained_at"] == "2026-01-05T09:00:00Z"


def test_registering_an_existing_version_is_refused_and_keeps_the_first(three_versions):
    with pytest.raises(ValidationError, match="1.1.0"):
        three_versions.register_model("diabetes", "1.1.0", MODELS[3.0])
    np.testing.assert_array_equal(_predictions(three_versions.load_model("diabetes", "1.1.0")),
                                  _predictions(MODELS[1.0]))


def test_a_version_differing_only_in_build_metadata_is_refused(registry):
    registry.register_model("diabetes", "1.0.0+build.1", MODELS[0.0])
    with pytest.raises(ValidationError):
        registry.register_model("diabetes", "1.0.0+build.2", MODELS[1.0])
    assert registry.list_versions("diabetes") == ["1.0.0+build.1"]


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "latest", "production", "", "1.0.0/..", "1.0.0\n", None, 1])
def test_bad_versions_are_refused(registry, version):
    with pytest.raises(ValidationError):
        registry.register_model("diabetes", version, MODELS[0.0])


def test_an_unfitted_model_is_refused_and_leaves_no_version(registry):
    registry.register_model("diabetes", "1.0.0", MODELS[0.0])
    with pytest.raises(ValidationError):
        registry.register_model("diabetes", "1.1.0", LinearRegression())
    assert registry.list_versions("diabetes") == ["1.0.0"]


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("version, model, metadata", [
    ("1.0.0", LinearRegression(), None),
    ("1.0.0", MODELS[0.0], {"accuracy": float("nan")}),
    ("1.0.0", MODELS[0.0], {"owner": object()}),
    ("1.0.0", MODELS[0.0], [("accuracy", 0.9)]),
    ("1.0", MODELS[0.0], None),
], ids=["unfitted", "nan-accuracy", "metadata-not-json", "metadata-not-a-dict", "bad-version"])
def test_a_refused_first_registration_leaves_no_trace(registry, root, version, model, metadata):
    registry.register_model("wine", "1.0.0", MODELS[0.0])
    before = _files_under(root)
    with pytest.raises(ValidationError):
        registry.register_model("diabetes", version, model, metadata=metadata)
    assert registry.list_models() == ["wine"]
    with pytest.raises(ModelNotFoundError):
        registry.list_versions("diabetes")
    assert _files_under(root) == before


# --- listing --------------------------------------------------------------------------------

def test_list_versions_sorts_by_semantic_version_not_text(registry):
    for version in ["1.10.0", "2.0.0", "0.9.1", "1.9.0", "2.0.0-rc.1", "2.0.0-alpha", "1.2.0"]:
        registry.register_model("diabetes", version, MODELS[0.0])
    assert registry.list_versions("diabetes") == [
        "0.9.1", "1.2.0", "1.9.0", "1.10.0", "2.0.0-alpha", "2.0.0-rc.1", "2.0.0"]


def test_latest_is_the_highest_semantic_version(registry):
    registry.register_model("diabetes", "1.10.0", MODELS[1.0])
    registry.register_model("diabetes", "1.9.0", MODELS[0.0])
    registry.register_model("diabetes", "1.11.0-rc.1", MODELS[2.0])
    np.testing.assert_array_equal(_predictions(registry.load_model("diabetes", "latest")),
                                  _predictions(MODELS[2.0]))
    registry.register_model("diabetes", "1.11.0", MODELS[3.0])
    np.testing.assert_array_equal(_predictions(registry.load_model("diabetes")), _predictions(MODELS[3.0]))


def test_list_models_returns_the_names_sorted(registry):
    for name in ["wine", "cancer", "diabetes-v2"]:
        registry.register_model(name, "1.0.0", MODELS[0.0])
    assert registry.list_models() == ["cancer", "diabetes-v2", "wine"]


def test_an_empty_registry_lists_no_models(registry):
    assert registry.list_models() == []


def test_list_versions_of_an_unknown_name_raises_model_not_found(registry):
    with pytest.raises(ModelNotFoundError, match="cancer"):
        registry.list_versions("cancer")
    with pytest.raises(KeyError):
        registry.list_versions("cancer")


def test_loading_an_unknown_name_or_version_raises_model_not_found(three_versions):
    with pytest.raises(ModelNotFoundError, match="cancer"):
        three_versions.load_model("cancer", "1.0.0")
    with pytest.raises(ModelNotFoundError, match="3.0.0"):
        three_versions.load_model("diabetes", "3.0.0")


@pytest.mark.parametrize("version", ["archived", "none", "1.0", "", None])
def test_loading_anything_but_a_version_latest_or_a_stage_is_refused(three_versions, version):
    with pytest.raises(ValidationError):
        three_versions.load_model("diabetes", version)


def test_a_folder_that_is_not_a_version_raises_model_format_error_naming_it(three_versions, root):
    (root / "diabetes" / "backup").mkdir()
    with pytest.raises(ModelFormatError, match="backup"):
        three_versions.list_versions("diabetes")


def test_listing_and_loading_by_stage_read_no_other_model_file(three_versions, root):
    three_versions.promote_model("diabetes", "2.0.0", "production")
    for version in ("1.0.0", "1.1.0"):  # damage every model file but production's
        (root / "diabetes" / version / "model.json").write_text("{ not json")
    reopened = ModelRegistry(root)
    assert reopened.list_versions("diabetes") == ["1.0.0", "1.1.0", "2.0.0"]
    np.testing.assert_array_equal(_predictions(reopened.load_model("diabetes", "production")),
                                  _predictions(MODELS[2.0]))


# --- stages ---------------------------------------------------------------------------------

def test_a_new_version_starts_in_no_stage(three_versions):
    assert three_versions.get_stages("diabetes") == {"1.0.0": "none", "1.1.0": "none", "2.0.0": "none"}


def test_loading_by_stage_returns_that_stages_version(three_versions):
    three_versions.promote_model("diabetes", "1.1.0", "staging")
    three_versions.promote_model("diabetes", "1.0.0", "production")
    np.testing.assert_array_equal(_predictions(three_versions.load_model("diabetes", "staging")),
                                  _predictions(MODELS[1.0]))
    np.testing.assert_array_equal(_predictions(three_versions.load_model("diabetes", "production")),
                                  _predictions(MODELS[0.0]))


def test_an_empty_stage_raises_model_not_found(three_versions):
    with pytest.raises(ModelNotFoundError, match="production"):
        three_versions.load_model("diabetes", "production")


@pytest.mark.parametrize("stage", ["prod", "Production", "archived", "none", "latest", ""])
def test_promoting_to_an_unknown_stage_is_refused(three_versions, stage):
    with pytest.raises(ValidationError):
        three_versions.promote_model("diabetes", "1.0.0", stage)
    assert three_versions.get_stage_history("diabetes") == []


def test_promoting_an_unknown_version_raises_model_not_found(three_versions):
    with pytest.raises(ModelNotFoundError, match="9.9.9"):
        three_versions.promote_model("diabetes", "9.9.9", "staging")
    with pytest.raises(ModelNotFoundError, match="cancer"):
        three_versions.promote_model("cancer", "1.0.0", "staging")


def test_a_stage_holds_one_version_the_previous_staging_leaves_it(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "staging")
    three_versions.promote_model("diabetes", "1.1.0", "staging")
    assert three_versions.get_stages("diabetes") == {"1.0.0": "none", "1.1.0": "staging", "2.0.0": "none"}


def test_promoting_to_production_archives_the_previous_production(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    three_versions.promote_model("diabetes", "1.1.0", "production")
    assert three_versions.get_stages("diabetes") == {"1.0.0": "archived", "1.1.0": "production", "2.0.0": "none"}


def test_staging_version_promoted_to_production_leaves_staging(three_versions):
    three_versions.promote_model("diabetes", "1.1.0", "staging")
    three_versions.promote_model("diabetes", "1.1.0", "production")
    assert three_versions.get_stages("diabetes")["1.1.0"] == "production"
    with pytest.raises(ModelNotFoundError):
        three_versions.load_model("diabetes", "staging")


@pytest.mark.parametrize("call", [
    lambda r: r.promote_model("diabetes", "1.1.0", "production", reason=5),
    lambda r: r.rollback("diabetes", reason=["bad"]),
], ids=["promote", "rollback"])
def test_a_reason_that_is_not_text_is_refused_and_the_stages_are_kept(three_versions, call):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    three_versions.promote_model("diabetes", "2.0.0", "production")
    history = three_versions.get_stage_history("diabetes")
    with pytest.raises(ValidationError, match="reason"):
        call(three_versions)
    assert three_versions.get_stage_history("diabetes") == history
    assert three_versions.resolve("diabetes", "production") == "2.0.0"


def test_promoting_a_version_to_its_own_stage_is_refused(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    with pytest.raises(ValidationError, match="production"):
        three_versions.promote_model("diabetes", "1.0.0", "production")
    assert len(three_versions.get_stage_history("diabetes")) == 1


# --- history and rollback ----------------------------------------------------------------------

def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def test_history_records_every_transition_with_from_to_when_and_reason(root):
    registry = ModelRegistry(root, clock=StepClock())
    registry.register_model("diabetes", "1.0.0", MODELS[0.0])   # minute 0
    registry.register_model("diabetes", "1.1.0", MODELS[1.0])   # minute 1
    registry.promote_model("diabetes", "1.0.0", "staging")       # minute 2
    registry.promote_model("diabetes", "1.0.0", "production", reason="passed review")  # minute 3
    registry.promote_model("diabetes", "1.1.0", "production", reason="better MAE")     # minute 4
    assert registry.get_stage_history("diabetes") == [
        {"version": "1.0.0", "from_stage": "none", "to_stage": "staging", "timestamp": _at(2), "reason": None},
        {"version": "1.0.0", "from_stage": "staging", "to_stage": "production", "timestamp": _at(3),
         "reason": "passed review"},
        {"version": "1.0.0", "from_stage": "production", "to_stage": "archived", "timestamp": _at(4),
         "reason": "replaced by 1.1.0"},
        {"version": "1.1.0", "from_stage": "none", "to_stage": "production", "timestamp": _at(4),
         "reason": "better MAE"},
    ]


def test_history_timestamps_are_timezone_aware_utc(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "staging")
    (entry,) = three_versions.get_stage_history("diabetes")
    assert entry["timestamp"].utcoffset() == timedelta(0)


def test_history_of_an_unknown_name_raises_model_not_found(registry):
    with pytest.raises(ModelNotFoundError):
        registry.get_stage_history("cancer")


def test_rollback_restores_the_previous_production_and_archives_the_current(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    three_versions.promote_model("diabetes", "1.1.0", "production")
    assert three_versions.rollback("diabetes") == "1.0.0"
    assert three_versions.get_stages("diabetes") == {"1.0.0": "production", "1.1.0": "archived", "2.0.0": "none"}
    np.testing.assert_array_equal(_predictions(three_versions.load_model("diabetes", "production")),
                                  _predictions(MODELS[0.0]))


def test_rollback_is_recorded_in_the_history_with_its_reason(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    three_versions.promote_model("diabetes", "1.1.0", "production")
    three_versions.rollback("diabetes", reason="error rate doubled")
    last_two = three_versions.get_stage_history("diabetes")[-2:]
    assert {(e["version"], e["from_stage"], e["to_stage"], e["reason"]) for e in last_two} == {
        ("1.1.0", "production", "archived", "error rate doubled"),
        ("1.0.0", "archived", "production", "error rate doubled"),
    }


def test_a_second_rollback_goes_further_back_not_forward(three_versions):
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        three_versions.promote_model("diabetes", version, "production")
    assert three_versions.rollback("diabetes") == "1.1.0"
    assert three_versions.rollback("diabetes") == "1.0.0"
    assert three_versions.get_stages("diabetes")["1.0.0"] == "production"
    with pytest.raises(ModelNotFoundError):
        three_versions.rollback("diabetes")


def test_a_version_promoted_back_to_production_leaves_the_rollback_list(three_versions):
    for version in ("1.0.0", "1.1.0", "1.0.0"):
        three_versions.promote_model("diabetes", version, "production")
    assert three_versions.rollback("diabetes") == "1.1.0"  # not 1.0.0, the version being replaced
    with pytest.raises(ModelNotFoundError):
        three_versions.rollback("diabetes")


def test_rollback_without_an_earlier_production_raises_model_not_found(three_versions):
    with pytest.raises(ModelNotFoundError):
        three_versions.rollback("diabetes")
    three_versions.promote_model("diabetes", "1.0.0", "production")
    with pytest.raises(ModelNotFoundError):
        three_versions.rollback("diabetes")
    assert three_versions.get_stages("diabetes")["1.0.0"] == "production"


# --- names: nothing is ever written outside the root -----------------------------------------

HOSTILE_NAMES = ["../x", "../../etc", "..", ".", "", "a/b", "a\\b", ".hidden", "Cancer", "-rf", " x", "x\n",
                 "a" * 101, None, 7]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_hostile_names_are_refused_and_nothing_is_written_outside_root(tmp_path, root, name):
    registry = ModelRegistry(root)
    before = _files_under(root)
    with pytest.raises(ValidationError):
        registry.register_model(name, "1.0.0", MODELS[0.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry"]
    assert _files_under(root) == before


def test_an_absolute_path_as_a_name_is_refused(tmp_path, root):
    registry = ModelRegistry(root)
    target = tmp_path / "elsewhere"
    before = _files_under(root)
    with pytest.raises(ValidationError):
        registry.register_model(str(target), "1.0.0", MODELS[0.0])
    assert not target.exists()
    assert _files_under(root) == before


@pytest.mark.parametrize("call", [
    lambda r: r.load_model("../diabetes", "1.0.0"),
    lambda r: r.list_versions("../diabetes"),
    lambda r: r.promote_model("../diabetes", "1.0.0", "staging"),
    lambda r: r.get_stage_history("/etc"),
    lambda r: r.rollback("Diabetes"),
], ids=["load", "list", "promote", "history", "rollback"])
def test_every_method_refuses_a_hostile_name(three_versions, call):
    with pytest.raises(ValidationError):
        call(three_versions)


def test_a_valid_name_may_hold_dots_dashes_and_underscores(registry):
    registry.register_model("cancer_v2.fast-1", "1.0.0", MODELS[0.0])
    assert registry.list_models() == ["cancer_v2.fast-1"]


# --- damaged files: a clear error, never a silent wrong model --------------------------------------

@pytest.mark.parametrize("text", ["{ not json", "", "[]", '{"format_version": 1}'])
def test_a_damaged_stage_file_raises_model_format_error_naming_it(three_versions, root, text):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    stage_file = root / "diabetes" / "stages.json"
    stage_file.write_text(text)
    with pytest.raises(ModelFormatError) as error:
        three_versions.load_model("diabetes", "production")
    assert str(stage_file) in str(error.value)


def test_a_hand_edited_stage_file_with_two_production_versions_is_refused(three_versions, root):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    three_versions.promote_model("diabetes", "1.1.0", "staging")
    stage_file = root / "diabetes" / "stages.json"
    stage_file.write_text(stage_file.read_text().replace('"staging"', '"production"'))
    with pytest.raises(ModelFormatError, match="stages.json"):
        three_versions.load_model("diabetes", "production")


def test_a_hand_edited_history_that_does_not_add_up_is_refused(three_versions, root):
    three_versions.promote_model("diabetes", "1.0.0", "staging")
    three_versions.promote_model("diabetes", "1.0.0", "production")
    stage_file = root / "diabetes" / "stages.json"
    state = json.loads(stage_file.read_text())
    del state["history"][0]  # now 1.0.0 leaves staging without ever entering it
    stage_file.write_text(json.dumps(state))
    with pytest.raises(ModelFormatError, match="stages.json"):
        three_versions.get_stages("diabetes")


def test_a_stage_naming_a_deleted_version_raises_model_format_error(three_versions, root):
    three_versions.promote_model("diabetes", "1.1.0", "production")
    shutil.rmtree(root / "diabetes" / "1.1.0")
    with pytest.raises(ModelFormatError, match="stages.json"):
        three_versions.load_model("diabetes", "production")


def test_a_tampered_model_file_raises_model_format_error_naming_it(three_versions):
    path = three_versions.register_model("diabetes", "3.0.0", MODELS[3.0])
    document = json.loads(path.read_text())
    document["parameters"]["intercept"] = 1000.0
    path.write_text(json.dumps(document))
    with pytest.raises(ModelFormatError) as error:
        three_versions.load_model("diabetes", "3.0.0")
    assert str(path) in str(error.value)


def test_a_model_file_copied_into_another_versions_folder_is_refused(three_versions, root):
    folder = root / "diabetes"
    (folder / "1.1.0" / "model.json").write_bytes((folder / "1.0.0" / "model.json").read_bytes())
    with pytest.raises(ModelFormatError, match="1.1.0"):
        three_versions.load_model("diabetes", "1.1.0")


# --- crashes and concurrent writers ---------------------------------------------------------------

# Dies with SIGKILL at the `kill_at`-th rename during register_model: the
# moment an atomic write commits.
KILLED_REGISTER = textwrap.dedent("""
    import os, signal, sys
    from deployment import LinearRegression, ModelRegistry, load_dataset
    root, kill_at = sys.argv[1], int(sys.argv[2])
    data = load_dataset("diabetes", seed=0)
    model = LinearRegression().fit(data.X_train, data.y_train)
    registry = ModelRegistry(root)
    calls = 0
    def die_at_the_nth_rename(original):
        def rename(*args, **kwargs):
            global calls
            calls += 1
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        return rename
    os.rename, os.replace = die_at_the_nth_rename(os.rename), die_at_the_nth_rename(os.replace)
    registry.register_model("diabetes", "2.0.0", model)
""")


def _run_child(script: str, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=timeout_s)


@pytest.mark.parametrize("kill_at", [1, 2])
def test_register_killed_midway_leaves_the_registry_readable(registry, root, kill_at):
    registry.register_model("diabetes", "1.0.0", MODELS[0.0])
    child = _run_child(KILLED_REGISTER, str(root), str(kill_at))
    assert child.returncode in (0, -signal.SIGKILL), child.stderr
    registry = ModelRegistry(root)
    versions = registry.list_versions("diabetes")
    assert versions in (["1.0.0"], ["1.0.0", "2.0.0"])
    for version in versions:  # every version listed is complete
        registry.load_model("diabetes", version)
    if kill_at == 1:
        assert child.returncode == -signal.SIGKILL and versions == ["1.0.0"]
    if versions == ["1.0.0"]:  # the lock was released and the leftovers do not get in the way
        registry.register_model("diabetes", "2.0.0", MODELS[2.0])
        assert registry.list_versions("diabetes") == ["1.0.0", "2.0.0"]
    registry.register_model("diabetes", "3.0.0", MODELS[3.0])  # the next writer clears the leftovers
    assert [p for p in root.rglob("*") if p.name.endswith(".tmp")] == []


def test_a_first_registration_killed_before_its_commit_leaves_no_model(root):
    ModelRegistry(root)
    child = _run_child(KILLED_REGISTER, str(root), "2")  # dies at the rename that would commit
    assert child.returncode == -signal.SIGKILL, child.stderr
    registry = ModelRegistry(root)
    assert registry.list_models() == []
    with pytest.raises(ModelNotFoundError):
        registry.list_versions("diabetes")


KILLED_PROMOTE = textwrap.dedent("""
    import os, signal, sys
    from deployment import ModelRegistry
    registry = ModelRegistry(sys.argv[1])
    registry.list_versions("diabetes")
    print("ready", flush=True)
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    os.rename = os.replace = die
    registry.promote_model("diabetes", "1.1.0", "production", reason="never happens")
""")


def test_promote_killed_midway_keeps_the_earlier_stages_and_history(three_versions, root):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    history = three_versions.get_stage_history("diabetes")
    child = _run_child(KILLED_PROMOTE, str(root))
    assert child.stdout.startswith("ready") and child.returncode == -signal.SIGKILL, child.stderr
    reopened = ModelRegistry(root)
    assert reopened.get_stages("diabetes") == {"1.0.0": "production", "1.1.0": "none", "2.0.0": "none"}
    assert reopened.get_stage_history("diabetes") == history
    reopened.promote_model("diabetes", "1.1.0", "production")  # the lock was released
    assert reopened.get_stages("diabetes")["1.1.0"] == "production"
    assert [p for p in root.rglob("*") if p.name.endswith(".tmp")] == []  # and the leftover is gone


REGISTER_FOREVER = textwrap.dedent("""
    import sys
    import numpy as np
    from deployment import LinearRegression, ModelRegistry
    rng = np.random.default_rng(0)
    model = LinearRegression().fit(rng.normal(size=(5, 50_000)), rng.normal(size=5))
    registry = ModelRegistry(sys.argv[1])
    registry.register_model("big", "1.0.0", model)
    print("ready", flush=True)
    for i in range(1, 10_000):  # the test kills this process mid-write
        registry.register_model("big", f"1.0.{i}", model)
""")


@pytest.mark.parametrize("delay_s", [0.05, 0.3])
def test_register_killed_at_any_moment_leaves_only_complete_versions(root, delay_s):
    assert ModelRegistry(root).list_models() == []
    writer = subprocess.Popen([sys.executable, "-c", REGISTER_FOREVER, str(root)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        time.sleep(delay_s)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    registry = ModelRegistry(root)
    versions = registry.list_versions("big")
    assert versions == [f"1.0.{i}" for i in range(len(versions))]
    assert registry.load_model("big", "latest").coef_.shape == (50_000,)


# Registers 25 versions of its own (major version = the worker's number) and
# promotes each to staging: four of these run at once.
CONCURRENT_WRITER = textwrap.dedent("""
    import sys
    from deployment import LinearRegression, ModelRegistry, load_dataset
    root, worker = sys.argv[1], int(sys.argv[2])
    data = load_dataset("diabetes", seed=0)
    model = LinearRegression().fit(data.X_train, data.y_train)
    registry = ModelRegistry(root)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(25):
        version = f"{worker}.{i}.0"
        registry.register_model("shared", version, model, metadata={"worker": worker})
        registry.promote_model("shared", version, "staging", reason=f"worker {worker}")
""")


def test_four_processes_registering_and_promoting_at_once_lose_nothing(root):
    assert ModelRegistry(root).list_models() == []
    writers = [subprocess.Popen([sys.executable, "-c", CONCURRENT_WRITER, str(root), str(worker)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for worker in range(1, 5)]
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        for writer in writers:
            _out, err = writer.communicate(timeout=60)
            assert writer.returncode == 0, err
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    registry = ModelRegistry(root)
    expected = [f"{w}.{i}.0" for w in range(1, 5) for i in range(25)]
    assert registry.list_versions("shared") == expected
    promoted = [e["version"] for e in registry.get_stage_history("shared") if e["to_stage"] == "staging"]
    assert sorted(promoted) == sorted(expected)
    assert list(registry.get_stages("shared").values()).count("staging") == 1
