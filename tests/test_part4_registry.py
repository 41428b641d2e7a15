"""Part 4: the model registry, versions and stages kept safely on disk.

Read with notebooks/04_model_registry.ipynb. Run just this part with
``pytest -m part4`` (or ``make grade PART=4``), one section with
``pytest -m "part4 and section3"`` (or ``make grade PART=4 SECTION=3``).

Each test carries the section of the notebook that teaches the last
method it needs: section 2 tests call only ``register_model`` (and check
the files with Part 1), section 3 tests also list and load, and so on.

Error messages are checked with the test's temporary folder replaced by
``<tmp>`` (``_message``): pytest names that folder after the test, so
without it a word of the test's name could satisfy a check on the message.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
from collections.abc import Callable
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
    load_model,
    load_serialized,
    parameters_checksum,
)

pytestmark = pytest.mark.part4

DIABETES = load_dataset("diabetes", seed=0)
START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
KEY = b"the registry's signing key"
OTHER_KEY = b"somebody else's key"


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


def _message(error: pytest.ExceptionInfo, tmp_path: Path) -> str:
    """The error's message with the test's folder shown as ``<tmp>``, so no word of the test's name can match."""
    return str(error.value).replace(str(tmp_path), "<tmp>")


def _files_under(folder: Path) -> list[str]:
    """Every path below ``folder`` (links included, never followed), relative to it, sorted."""
    return sorted(str(Path(parent, name).relative_to(folder))
                  for parent, dirs, files in os.walk(folder) for name in dirs + files)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """The contents of every file below ``folder``: a write anywhere in it changes the snapshot."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


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


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder next to the registry, outside its root: where a planted link points."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "keep.txt").write_text("not the registry's\n")
    return folder


# --- 2. registering a version (checked with Part 1 and the files themselves) --------------------

@pytest.mark.section2
def test_registered_model_file_loads_back_with_identical_predictions(registry):
    path = registry.register_model("diabetes", "1.0.0", MODELS[1.0])
    np.testing.assert_array_equal(_predictions(load_model(path)), _predictions(MODELS[1.0]))


@pytest.mark.section2
def test_register_returns_root_name_version_model_json(registry, root):
    path = registry.register_model("diabetes", "1.0.0", MODELS[0.0])
    assert path == root / "diabetes" / "1.0.0" / "model.json"
    assert path.is_file()


@pytest.mark.section2
def test_the_file_holds_the_version_it_was_registered_as(registry):
    path = registry.register_model("diabetes", "2.1.0-rc.1", MODELS[0.0])
    assert load_serialized(path).version == "2.1.0-rc.1"


@pytest.mark.section2
def test_metadata_keeps_registered_at_the_models_facts_and_user_keys(root):
    registry = ModelRegistry(root, clock=lambda: START)
    path = registry.register_model("diabetes", "1.1.0", MODELS[1.0], metadata={
        "accuracy": 0.47, "trained_at": "2026-01-04T18:30:00Z", "data_sha256": "ab12", "parent": "1.0.0",
    })
    metadata = load_serialized(path).metadata
    assert metadata["registered_at"] == "2026-01-05T09:00:00Z"
    assert metadata["trained_at"] == "2026-01-04T18:30:00Z"
    assert metadata["accuracy"] == 0.47
    assert metadata["data_sha256"] == "ab12" and metadata["parent"] == "1.0.0"


@pytest.mark.section2
def test_trained_at_defaults_to_the_registry_clock(root):
    registry = ModelRegistry(root, clock=lambda: START)
    path = registry.register_model("diabetes", "1.0.0", MODELS[0.0])
    assert load_serialized(path).metadata["trained_at"] == "2026-01-05T09:00:00Z"


@pytest.mark.section2
def test_registering_does_not_change_the_callers_metadata(registry):
    metadata = {"accuracy": 0.5}
    registry.register_model("diabetes", "1.0.0", MODELS[0.0], metadata=metadata)
    assert metadata == {"accuracy": 0.5}


@pytest.mark.section2
def test_registering_an_existing_version_is_refused_and_keeps_the_first(registry):
    path = registry.register_model("diabetes", "1.1.0", MODELS[1.0])
    with pytest.raises(ValidationError, match="already exists"):
        registry.register_model("diabetes", "1.1.0", MODELS[3.0])
    np.testing.assert_array_equal(_predictions(load_model(path)), _predictions(MODELS[1.0]))


@pytest.mark.section2
def test_a_version_differing_only_in_build_metadata_is_refused(registry, root):
    registry.register_model("diabetes", "1.0.0+build.1", MODELS[0.0])
    with pytest.raises(ValidationError, match="already exists"):
        registry.register_model("diabetes", "1.0.0+build.2", MODELS[1.0])
    assert os.listdir(root / "diabetes") == ["1.0.0+build.1"]


@pytest.mark.section2
@pytest.mark.parametrize("version", [
    "1.0", "v1.0.0", "latest", "production", "", "1.0.0/..", "../1.0.0", "1.0.0\n", None, 1,
    "1.0.0-" + "a" * 300, "1" * 5000 + ".0.0",
], ids=lambda version: repr(version) if len(str(version)) < 20 else f"{len(version)}-characters")
def test_bad_versions_are_refused_and_leave_no_trace(registry, root, version):
    registry.register_model("wine", "1.0.0", MODELS[0.0])
    before = _files_under(root)
    with pytest.raises(ValidationError):
        registry.register_model("diabetes", version, MODELS[0.0])
    assert _files_under(root) == before


@pytest.mark.section2
def test_a_300_character_version_is_refused_with_the_length_limit(registry, tmp_path):
    with pytest.raises(ValidationError) as error:
        registry.register_model("diabetes", "1.0.0-" + "a" * 294, MODELS[0.0])
    assert "128" in _message(error, tmp_path)  # versions.MAX_VERSION_LENGTH


@pytest.mark.section2
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
    assert _files_under(root) == before


@pytest.mark.section2
def test_metadata_that_is_not_a_dict_is_refused_with_a_message_saying_so(registry, tmp_path):
    with pytest.raises(ValidationError) as error:
        registry.register_model("diabetes", "1.0.0", MODELS[0.0], metadata=[("accuracy", 0.9)])
    assert "must be a dict" in _message(error, tmp_path)


@pytest.mark.section2
def test_an_unfitted_model_is_refused_and_leaves_no_version(registry, root):
    registry.register_model("diabetes", "1.0.0", MODELS[0.0])
    with pytest.raises(ValidationError):
        registry.register_model("diabetes", "1.1.0", LinearRegression())
    assert sorted(os.listdir(root / "diabetes")) == ["1.0.0"]


HOSTILE_NAMES = ["../x", "../../etc", "..", ".", "", "a/b", "a\\b", ".hidden", "Cancer", "-rf", " x", "x\n",
                 "a" * 101, None, 7]


@pytest.mark.section2
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_hostile_names_are_refused_and_nothing_is_written_outside_root(tmp_path, root, name):
    registry = ModelRegistry(root)
    before = _files_under(root)
    with pytest.raises(ValidationError):
        registry.register_model(name, "1.0.0", MODELS[0.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry"]
    assert _files_under(root) == before


@pytest.mark.section2
@pytest.mark.parametrize("name", ["Cancer", "../x", None])
def test_a_refused_name_is_shown_in_the_message(registry, tmp_path, name):
    with pytest.raises(ValidationError) as error:
        registry.register_model(name, "1.0.0", MODELS[0.0])
    assert repr(name) in _message(error, tmp_path)


@pytest.mark.section2
def test_an_absolute_path_as_a_name_is_refused(tmp_path, root):
    registry = ModelRegistry(root)
    target = tmp_path / "elsewhere"
    before = _files_under(root)
    with pytest.raises(ValidationError):
        registry.register_model(str(target), "1.0.0", MODELS[0.0])
    assert not target.exists()
    assert _files_under(root) == before


@pytest.mark.section2
def test_a_valid_name_may_hold_dots_dashes_and_underscores(registry, root):
    path = registry.register_model("cancer_v2.fast-1", "1.0.0", MODELS[0.0])
    assert path == root / "cancer_v2.fast-1" / "1.0.0" / "model.json"


# signing

@pytest.mark.section2
def test_a_signed_registry_saves_files_signed_with_its_key(root):
    path = ModelRegistry(root, signing_key=KEY).register_model("diabetes", "1.0.0", MODELS[1.0])
    np.testing.assert_array_equal(_predictions(load_model(path, signing_key=KEY)), _predictions(MODELS[1.0]))
    with pytest.raises(ModelFormatError, match="signature does not match"):
        load_model(path, signing_key=OTHER_KEY)


@pytest.mark.section2
def test_a_registry_without_a_key_saves_files_unsigned(registry):
    path = registry.register_model("diabetes", "1.0.0", MODELS[1.0])
    assert load_serialized(path).signature is None


@pytest.mark.section2
@pytest.mark.parametrize("key", [b"", ""], ids=["bytes", "str"])
def test_an_empty_signing_key_is_refused_and_leaves_no_trace(root, key):
    ModelRegistry(root).register_model("wine", "1.0.0", MODELS[0.0])
    registry = ModelRegistry(root, signing_key=key)
    before = _files_under(root)
    with pytest.raises(ValidationError, match="signing key"):
        registry.register_model("diabetes", "1.0.0", MODELS[0.0])
    assert _files_under(root) == before


# links planted inside the root are never followed on write

@pytest.mark.section2
def test_a_link_as_a_models_folder_is_refused_and_nothing_is_written_outside(tmp_path, root, outside):
    ModelRegistry(root).register_model("diabetes", "1.0.0", MODELS[0.0])
    shutil.move(root / "diabetes", outside / "diabetes")
    (root / "diabetes").symlink_to(outside / "diabetes", target_is_directory=True)
    before = _snapshot(outside), _files_under(outside)
    with pytest.raises(ModelFormatError) as error:
        ModelRegistry(root).register_model("diabetes", "2.0.0", MODELS[2.0])
    message = _message(error, tmp_path)
    assert "<tmp>/registry/diabetes" in message and "symbolic link" in message
    assert (_snapshot(outside), _files_under(outside)) == before


@pytest.mark.section2
def test_a_dangling_link_where_a_new_models_folder_would_go_is_refused(tmp_path, root, outside):
    registry = ModelRegistry(root)
    (root / "wine").symlink_to(outside / "wine", target_is_directory=True)  # outside/wine does not exist
    with pytest.raises(ModelFormatError) as error:
        registry.register_model("wine", "1.0.0", MODELS[0.0])
    assert "symbolic link" in _message(error, tmp_path)
    assert not (outside / "wine").exists()
    assert [p.name for p in root.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.section2
def test_a_link_as_the_lock_file_is_refused_and_its_target_is_not_created(tmp_path, root, outside):
    registry = ModelRegistry(root)
    (root / ".lock").symlink_to(outside / "lock-target")
    with pytest.raises(ModelFormatError) as error:
        registry.register_model("diabetes", "1.0.0", MODELS[0.0])
    message = _message(error, tmp_path)
    assert "<tmp>/registry/.lock" in message and "symbolic link" in message
    assert not (outside / "lock-target").exists()
    assert not (root / "diabetes").exists()


@pytest.mark.section2
def test_a_leftover_that_is_a_link_is_removed_without_touching_its_target(root, outside):
    registry = ModelRegistry(root)
    (root / ".crashed.tmp").symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    registry.register_model("diabetes", "1.0.0", MODELS[0.0])
    assert not os.path.lexists(root / ".crashed.tmp")
    assert _snapshot(outside) == before


# --- 3. listing and loading versions -------------------------------------------------------------

@pytest.mark.section3
def test_registered_model_loads_back_with_identical_predictions(registry):
    registry.register_model("diabetes", "1.0.0", MODELS[1.0])
    loaded = registry.load_model("diabetes", "1.0.0")
    np.testing.assert_array_equal(_predictions(loaded), _predictions(MODELS[1.0]))


@pytest.mark.section3
def test_each_version_loads_its_own_model(three_versions):
    for version, alpha in (("1.0.0", 0.0), ("1.1.0", 1.0), ("2.0.0", 2.0)):
        loaded = three_versions.load_model("diabetes", version)
        np.testing.assert_array_equal(_predictions(loaded), _predictions(MODELS[alpha]))


@pytest.mark.section3
def test_get_metadata_returns_what_was_registered_with_the_version(three_versions):
    metadata = three_versions.get_metadata("diabetes", "1.1.0")
    assert metadata["accuracy"] == 0.6
    assert metadata["registered_at"] == "2026-01-05T09:01:00Z"  # the clock's second reading
    assert three_versions.get_metadata("diabetes")["accuracy"] == 0.7  # latest: 2.0.0


@pytest.mark.section3
def test_list_versions_sorts_by_semantic_version_not_text(registry):
    for version in ["1.10.0", "2.0.0", "0.9.1", "1.9.0", "2.0.0-rc.1", "2.0.0-alpha", "1.2.0"]:
        registry.register_model("diabetes", version, MODELS[0.0])
    assert registry.list_versions("diabetes") == [
        "0.9.1", "1.2.0", "1.9.0", "1.10.0", "2.0.0-alpha", "2.0.0-rc.1", "2.0.0"]


@pytest.mark.section3
def test_latest_is_the_highest_semantic_version(registry):
    registry.register_model("diabetes", "1.10.0", MODELS[1.0])
    registry.register_model("diabetes", "1.9.0", MODELS[0.0])
    registry.register_model("diabetes", "1.11.0-rc.1", MODELS[2.0])
    assert registry.resolve("diabetes", "latest") == "1.11.0-rc.1"
    np.testing.assert_array_equal(_predictions(registry.load_model("diabetes", "latest")),
                                  _predictions(MODELS[2.0]))
    registry.register_model("diabetes", "1.11.0", MODELS[3.0])
    np.testing.assert_array_equal(_predictions(registry.load_model("diabetes")), _predictions(MODELS[3.0]))


@pytest.mark.section3
def test_resolve_returns_an_exact_version_unchanged(three_versions):
    assert three_versions.resolve("diabetes", "1.1.0") == "1.1.0"


@pytest.mark.section3
def test_list_models_returns_the_names_sorted(registry):
    for name in ["wine", "cancer", "diabetes-v2"]:
        registry.register_model(name, "1.0.0", MODELS[0.0])
    assert registry.list_models() == ["cancer", "diabetes-v2", "wine"]


@pytest.mark.section3
def test_an_empty_registry_lists_no_models(registry):
    assert registry.list_models() == []


@pytest.mark.section3
def test_list_models_skips_hidden_entries_and_files(three_versions, root):
    (root / ".x1y2.tmp").mkdir()
    (root / "notes.txt").write_text("hello")
    assert three_versions.list_models() == ["diabetes"]


@pytest.mark.section3
def test_list_versions_of_an_unknown_name_raises_model_not_found(registry, tmp_path):
    with pytest.raises(ModelNotFoundError) as error:
        registry.list_versions("cancer")
    assert "'cancer'" in _message(error, tmp_path)
    assert isinstance(error.value, KeyError)


@pytest.mark.section3
def test_loading_an_unknown_name_or_version_raises_model_not_found(three_versions, tmp_path):
    with pytest.raises(ModelNotFoundError) as error:
        three_versions.load_model("cancer", "1.0.0")
    assert "'cancer'" in _message(error, tmp_path)
    with pytest.raises(ModelNotFoundError) as error:
        three_versions.load_model("diabetes", "3.0.0")
    assert "3.0.0" in _message(error, tmp_path)


@pytest.mark.section3
def test_latest_of_a_model_without_versions_raises_model_not_found(registry, root, tmp_path):
    (root / "diabetes").mkdir()
    with pytest.raises(ModelNotFoundError) as error:
        registry.load_model("diabetes", "latest")
    assert "no versions yet" in _message(error, tmp_path)


@pytest.mark.section3
@pytest.mark.parametrize("version", ["archived", "none", "1.0", "", None, "1.0.0-" + "a" * 300])
def test_loading_anything_but_a_version_latest_or_a_stage_is_refused(three_versions, version):
    with pytest.raises(ValidationError):
        three_versions.load_model("diabetes", version)


@pytest.mark.section3
@pytest.mark.parametrize("version", ["archived", "none"])
def test_a_stage_that_holds_many_versions_cannot_be_loaded(three_versions, tmp_path, version):
    with pytest.raises(ValidationError) as error:
        three_versions.load_model("diabetes", version)
    assert "Cannot load" in _message(error, tmp_path)


@pytest.mark.section3
def test_a_folder_that_is_not_a_version_raises_model_format_error_naming_it(three_versions, root, tmp_path):
    (root / "diabetes" / "backup").mkdir()
    with pytest.raises(ModelFormatError) as error:
        three_versions.list_versions("diabetes")
    message = _message(error, tmp_path)
    assert "<tmp>/registry/diabetes/backup" in message and "must be named by a version" in message


@pytest.mark.section3
def test_loading_one_version_reads_no_other_model_file(three_versions, root):
    for version in ("1.0.0", "1.1.0"):  # damage every model file but 2.0.0's
        (root / "diabetes" / version / "model.json").write_text("{ not json")
    reopened = ModelRegistry(root)
    assert reopened.list_versions("diabetes") == ["1.0.0", "1.1.0", "2.0.0"]
    np.testing.assert_array_equal(_predictions(reopened.load_model("diabetes", "latest")),
                                  _predictions(MODELS[2.0]))


@pytest.mark.section3
def test_a_tampered_model_file_raises_model_format_error_naming_it(three_versions, tmp_path):
    path = three_versions.register_model("diabetes", "3.0.0", MODELS[3.0])
    document = json.loads(path.read_text())
    document["parameters"]["intercept"] = 1000.0
    path.write_text(json.dumps(document))
    for read in (three_versions.load_model, three_versions.get_metadata):
        with pytest.raises(ModelFormatError) as error:
            read("diabetes", "3.0.0")
        assert "<tmp>/registry/diabetes/3.0.0/model.json" in _message(error, tmp_path)


@pytest.mark.section3
def test_a_model_file_copied_into_another_versions_folder_is_refused(three_versions, root, tmp_path):
    folder = root / "diabetes"
    (folder / "1.1.0" / "model.json").write_bytes((folder / "1.0.0" / "model.json").read_bytes())
    with pytest.raises(ModelFormatError) as error:
        three_versions.load_model("diabetes", "1.1.0")
    assert "but its folder says 1.1.0" in _message(error, tmp_path)


# signing

@pytest.mark.section3
def test_a_signed_registry_reopened_with_its_key_reads_everything(root):
    ModelRegistry(root, signing_key=KEY).register_model("diabetes", "1.0.0", MODELS[1.0], metadata={"accuracy": 0.5})
    reopened = ModelRegistry(root, signing_key=KEY)
    np.testing.assert_array_equal(_predictions(reopened.load_model("diabetes", "1.0.0")), _predictions(MODELS[1.0]))
    assert reopened.get_metadata("diabetes", "1.0.0")["accuracy"] == 0.5


@pytest.mark.section3
def test_a_signed_registry_refuses_a_version_that_is_not_signed(three_versions, root, tmp_path):
    signed = ModelRegistry(root, signing_key=KEY)
    for read in (signed.load_model, signed.get_metadata):
        with pytest.raises(ModelFormatError) as error:
            read("diabetes", "1.0.0")
        message = _message(error, tmp_path)
        assert "<tmp>/registry/diabetes/1.0.0/model.json" in message and "is not signed" in message


@pytest.mark.section3
def test_a_signed_registry_refuses_a_version_signed_with_another_key(root, tmp_path):
    ModelRegistry(root, signing_key=OTHER_KEY).register_model("diabetes", "1.0.0", MODELS[0.0])
    signed = ModelRegistry(root, signing_key=KEY)
    for read in (signed.load_model, signed.get_metadata):
        with pytest.raises(ModelFormatError) as error:
            read("diabetes", "1.0.0")
        assert "signature does not match" in _message(error, tmp_path)


@pytest.mark.section3
def test_a_forged_file_with_a_recomputed_checksum_is_refused_by_a_signed_registry(root, tmp_path):
    signed = ModelRegistry(root, signing_key=KEY)
    path = signed.register_model("diabetes", "1.0.0", MODELS[0.0])
    document = json.loads(path.read_text())
    document["parameters"]["intercept"] = 1000.0
    document["checksum"] = parameters_checksum(document["parameters"])  # what a forger does
    path.write_text(json.dumps(document))
    with pytest.raises(ModelFormatError) as error:
        signed.load_model("diabetes", "1.0.0")
    assert "signature does not match" in _message(error, tmp_path)
    assert ModelRegistry(root).load_model("diabetes", "1.0.0").intercept_ == 1000.0  # the checksum alone passes it


@pytest.mark.section3
def test_the_signing_key_is_never_shown(root, tmp_path):
    ModelRegistry(root, signing_key=OTHER_KEY).register_model("diabetes", "1.0.0", MODELS[0.0])
    signed = ModelRegistry(root, signing_key=KEY)
    with pytest.raises(ModelFormatError) as error:
        signed.load_model("diabetes", "1.0.0")
    for shown in (str(error.value), repr(signed)):
        assert KEY.decode() not in shown and OTHER_KEY.decode() not in shown


# links planted inside the root are never followed on read

@pytest.mark.section3
def test_a_link_as_a_models_folder_is_refused_by_every_reader(tmp_path, root, outside):
    ModelRegistry(root).register_model("diabetes", "1.0.0", MODELS[0.0])
    shutil.copytree(root / "diabetes", outside / "diabetes")
    shutil.rmtree(root / "diabetes")
    (root / "diabetes").symlink_to(outside / "diabetes", target_is_directory=True)
    registry = ModelRegistry(root)
    for read in (registry.list_models, lambda: registry.list_versions("diabetes"),
                 lambda: registry.load_model("diabetes", "1.0.0"), lambda: registry.get_metadata("diabetes")):
        with pytest.raises(ModelFormatError) as error:
            read()
        message = _message(error, tmp_path)
        assert "<tmp>/registry/diabetes" in message and "symbolic link" in message


@pytest.mark.section3
def test_a_link_as_a_version_folder_is_refused(tmp_path, three_versions, root, outside):
    shutil.copytree(root / "diabetes" / "1.1.0", outside / "1.1.0")
    shutil.rmtree(root / "diabetes" / "1.1.0")
    (root / "diabetes" / "1.1.0").symlink_to(outside / "1.1.0", target_is_directory=True)
    for read in (lambda: three_versions.load_model("diabetes", "1.1.0"),
                 lambda: three_versions.list_versions("diabetes")):
        with pytest.raises(ModelFormatError) as error:
            read()
        message = _message(error, tmp_path)
        assert "<tmp>/registry/diabetes/1.1.0" in message and "symbolic link" in message


@pytest.mark.section3
def test_a_link_as_a_model_file_is_refused(tmp_path, three_versions, root, outside):
    model_file = root / "diabetes" / "1.1.0" / "model.json"
    shutil.move(model_file, outside / "model.json")  # a genuine file of the right version
    model_file.symlink_to(outside / "model.json")
    for read in (three_versions.load_model, three_versions.get_metadata):
        with pytest.raises(ModelFormatError) as error:
            read("diabetes", "1.1.0")
        message = _message(error, tmp_path)
        assert "<tmp>/registry/diabetes/1.1.0/model.json" in message and "symbolic link" in message


@pytest.mark.section3
def test_a_link_to_another_model_inside_the_root_is_refused_too(tmp_path, three_versions, root):
    (root / "diabetes-copy").symlink_to(root / "diabetes", target_is_directory=True)
    with pytest.raises(ModelFormatError) as error:
        three_versions.load_model("diabetes-copy", "1.0.0")
    assert "symbolic link" in _message(error, tmp_path)


# --- 4. promoting through stages ------------------------------------------------------------------

@pytest.mark.section4
def test_a_new_version_starts_in_no_stage(three_versions):
    assert three_versions.get_stages("diabetes") == {"1.0.0": "none", "1.1.0": "none", "2.0.0": "none"}


@pytest.mark.section4
def test_loading_by_stage_returns_that_stages_version(three_versions):
    three_versions.promote_model("diabetes", "1.1.0", "staging")
    three_versions.promote_model("diabetes", "1.0.0", "production")
    assert three_versions.resolve("diabetes", "staging") == "1.1.0"
    np.testing.assert_array_equal(_predictions(three_versions.load_model("diabetes", "staging")),
                                  _predictions(MODELS[1.0]))
    np.testing.assert_array_equal(_predictions(three_versions.load_model("diabetes", "production")),
                                  _predictions(MODELS[0.0]))


@pytest.mark.section4
def test_an_empty_stage_raises_model_not_found(three_versions, tmp_path):
    with pytest.raises(ModelNotFoundError) as error:
        three_versions.load_model("diabetes", "production")
    assert "no version in production" in _message(error, tmp_path)


@pytest.mark.section4
@pytest.mark.parametrize("stage", ["prod", "Production", "archived", "none", "latest", ""])
def test_promoting_to_an_unknown_stage_is_refused(three_versions, root, tmp_path, stage):
    with pytest.raises(ValidationError) as error:
        three_versions.promote_model("diabetes", "1.0.0", stage)
    assert "is not one of" in _message(error, tmp_path)
    assert three_versions.get_stages("diabetes") == {"1.0.0": "none", "1.1.0": "none", "2.0.0": "none"}
    assert not (root / "diabetes" / "stages.json").exists()


@pytest.mark.section4
def test_promoting_an_unknown_version_raises_model_not_found(three_versions, tmp_path):
    with pytest.raises(ModelNotFoundError) as error:
        three_versions.promote_model("diabetes", "9.9.9", "staging")
    assert "9.9.9" in _message(error, tmp_path)
    with pytest.raises(ModelNotFoundError) as error:
        three_versions.promote_model("cancer", "1.0.0", "staging")
    assert "'cancer'" in _message(error, tmp_path)


@pytest.mark.section4
def test_a_stage_holds_one_version_the_previous_staging_leaves_it(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "staging")
    three_versions.promote_model("diabetes", "1.1.0", "staging")
    assert three_versions.get_stages("diabetes") == {"1.0.0": "none", "1.1.0": "staging", "2.0.0": "none"}


@pytest.mark.section4
def test_promoting_to_production_archives_the_previous_production(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    three_versions.promote_model("diabetes", "1.1.0", "production")
    assert three_versions.get_stages("diabetes") == {"1.0.0": "archived", "1.1.0": "production", "2.0.0": "none"}


@pytest.mark.section4
def test_staging_version_promoted_to_production_leaves_staging(three_versions):
    three_versions.promote_model("diabetes", "1.1.0", "staging")
    three_versions.promote_model("diabetes", "1.1.0", "production")
    assert three_versions.get_stages("diabetes")["1.1.0"] == "production"
    with pytest.raises(ModelNotFoundError):
        three_versions.load_model("diabetes", "staging")


@pytest.mark.section4
def test_a_reason_that_is_not_text_is_refused_and_the_stages_are_kept(three_versions, tmp_path):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    stages = three_versions.get_stages("diabetes")
    with pytest.raises(ValidationError) as error:
        three_versions.promote_model("diabetes", "1.1.0", "production", reason=5)
    assert "reason must be a string or None" in _message(error, tmp_path)
    assert three_versions.get_stages("diabetes") == stages


@pytest.mark.section4
def test_promoting_a_version_to_its_own_stage_is_refused(three_versions, root, tmp_path):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    stage_file = (root / "diabetes" / "stages.json").read_bytes()
    with pytest.raises(ValidationError) as error:
        three_versions.promote_model("diabetes", "1.0.0", "production")
    assert "already in production" in _message(error, tmp_path)
    assert (root / "diabetes" / "stages.json").read_bytes() == stage_file


@pytest.mark.section4
def test_loading_by_stage_reads_no_other_model_file(three_versions, root):
    three_versions.promote_model("diabetes", "1.1.0", "production")
    for version in ("1.0.0", "2.0.0"):  # damage every model file but production's
        (root / "diabetes" / version / "model.json").write_text("{ not json")
    np.testing.assert_array_equal(_predictions(ModelRegistry(root).load_model("diabetes", "production")),
                                  _predictions(MODELS[1.0]))


# damaged and forged stage files: a clear error naming the file, never a wrong model

def _stage_file(registry: ModelRegistry, root: Path) -> Path:
    """Promote 1.0.0 to production and return the stage file that records it."""
    registry.promote_model("diabetes", "1.0.0", "production")
    return root / "diabetes" / "stages.json"


def _transition(version: str, from_stage: str, to_stage: str, **changes) -> dict:
    return {"version": version, "from_stage": from_stage, "to_stage": to_stage,
            "timestamp": "2026-01-05T09:00:00Z", "reason": None, **changes}


def _state(*history: dict, **changes) -> dict:
    return {"format_version": 1, "previous_production": [], "history": list(history), **changes}


DAMAGED_STAGE_FILES = {
    "not-json": ("{ not json", "not valid JSON"),
    "empty": ("", "not valid JSON"),
    "a-list": ("[]", "must hold a JSON object"),
    "no-history": (json.dumps({"format_version": 1}), "previous_production"),
    "history-not-a-list": (json.dumps(_state(history={})), "'history' must be a list"),
    "newer-format": (json.dumps(_state(format_version=2)), "format_version"),
    "format-true": (json.dumps(_state(format_version=True)), "format_version"),
    "unknown-key": (json.dumps(_state(comment=[[1]])), "unknown keys"),
    "signature-not-text": (json.dumps(_state(signature=[1])), "signature"),
    "extra-key-in-a-transition": (json.dumps(_state(_transition("1.0.0", "none", "production", by="me"))),
                                  "history[0]"),
    "stage-unknown": (json.dumps(_state(_transition("1.0.0", "none", "prod"))), "history[0]"),
    "version-a-path": (json.dumps(_state(_transition("../../../outside", "none", "production"))), "history[0]"),
    "version-300-characters": (json.dumps(_state(_transition("1.0.0-" + "a" * 294, "none", "production"))),
                               "history[0]"),
    "reason-nested": (json.dumps(_state(_transition("1.0.0", "none", "production", reason=[[["deep"]]]))),
                      "history[0]"),
    "timestamp-without-zone": (json.dumps(_state(_transition("1.0.0", "none", "production",
                                                             timestamp="2026-01-05T09:00:00"))), "time zone"),
    "timestamp-not-a-time": (json.dumps(_state(_transition("1.0.0", "none", "production", timestamp="soon"))),
                             "ISO 8601"),
    "previous-a-path": (json.dumps(_state(_transition("1.0.0", "none", "production"),
                                          previous_production=["../../x"])), "previous_production"),
    "nested-100000-deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "value-nested-100000-deep": ('{"format_version": 1, "history": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                 "nested too deeply"),
}


@pytest.mark.section4
@pytest.mark.parametrize("text, words", DAMAGED_STAGE_FILES.values(), ids=DAMAGED_STAGE_FILES.keys())
def test_a_damaged_stage_file_raises_model_format_error_naming_it(three_versions, root, tmp_path, text, words):
    stage_file = _stage_file(three_versions, root)
    stage_file.write_text(text)
    for read in (lambda: three_versions.load_model("diabetes", "production"),
                 lambda: three_versions.get_stages("diabetes"),
                 lambda: three_versions.promote_model("diabetes", "1.1.0", "staging")):
        with pytest.raises(ModelFormatError) as error:
            read()
        message = _message(error, tmp_path)
        assert message.startswith("<tmp>/registry/diabetes/stages.json: ") and words in message
    assert stage_file.read_text() == text  # a refused promotion wrote nothing


@pytest.mark.section4
def test_a_message_about_a_stage_file_never_prints_a_whole_value(three_versions, root, tmp_path):
    stage_file = _stage_file(three_versions, root)
    stage_file.write_text(json.dumps(_state(format_version="9" * 100_000)))
    with pytest.raises(ModelFormatError) as error:
        three_versions.get_stages("diabetes")
    message = _message(error, tmp_path)
    assert "format_version" in message and len(message) < 500


@pytest.mark.section4
def test_a_hand_edited_stage_file_with_two_production_versions_is_refused(three_versions, root, tmp_path):
    three_versions.promote_model("diabetes", "1.1.0", "staging")
    stage_file = _stage_file(three_versions, root)
    stage_file.write_text(stage_file.read_text().replace('"staging"', '"production"'))
    with pytest.raises(ModelFormatError) as error:
        three_versions.load_model("diabetes", "production")
    message = _message(error, tmp_path)
    assert "<tmp>/registry/diabetes/stages.json" in message and "at most one may be" in message


@pytest.mark.section4
def test_a_hand_edited_history_that_does_not_add_up_is_refused(three_versions, root, tmp_path):
    three_versions.promote_model("diabetes", "1.0.0", "staging")
    stage_file = _stage_file(three_versions, root)
    state = json.loads(stage_file.read_text())
    del state["history"][0]  # now 1.0.0 leaves staging without ever entering it
    stage_file.write_text(json.dumps(state))
    with pytest.raises(ModelFormatError) as error:
        three_versions.get_stages("diabetes")
    message = _message(error, tmp_path)
    assert "<tmp>/registry/diabetes/stages.json" in message and "but it was in none" in message


@pytest.mark.section4
def test_a_stage_naming_a_deleted_version_raises_model_format_error(three_versions, root, tmp_path):
    three_versions.promote_model("diabetes", "1.1.0", "production")
    shutil.rmtree(root / "diabetes" / "1.1.0")
    with pytest.raises(ModelFormatError) as error:
        three_versions.load_model("diabetes", "production")
    message = _message(error, tmp_path)
    assert "<tmp>/registry/diabetes/stages.json" in message and "which does not exist" in message


@pytest.mark.section4
def test_a_link_as_the_stage_file_is_refused_and_its_target_is_never_written(tmp_path, three_versions, root, outside):
    stage_file = _stage_file(three_versions, root)
    shutil.move(stage_file, outside / "stages.json")  # a genuine stage file
    stage_file.symlink_to(outside / "stages.json")
    before = _snapshot(outside)
    for call in (lambda: three_versions.load_model("diabetes", "production"),
                 lambda: three_versions.get_stages("diabetes"),
                 lambda: three_versions.promote_model("diabetes", "1.1.0", "production")):
        with pytest.raises(ModelFormatError) as error:
            call()
        message = _message(error, tmp_path)
        assert "<tmp>/registry/diabetes/stages.json" in message and "symbolic link" in message
    assert _snapshot(outside) == before


# signed stage files

@pytest.mark.section4
def test_a_signed_registry_signs_its_stage_file_and_reads_it_back(root):
    signed = ModelRegistry(root, signing_key=KEY)
    for version in ("1.0.0", "1.1.0"):
        signed.register_model("diabetes", version, MODELS[0.0])
    signed.promote_model("diabetes", "1.0.0", "production")
    signed.promote_model("diabetes", "1.1.0", "production")
    assert "signature" in json.loads((root / "diabetes" / "stages.json").read_text())
    assert ModelRegistry(root, signing_key=KEY).get_stages("diabetes") == {"1.0.0": "archived", "1.1.0": "production"}


@pytest.mark.section4
def test_a_signed_registry_refuses_a_hand_edited_stage_file(root, tmp_path):
    signed = ModelRegistry(root, signing_key=KEY)
    for version in ("1.0.0", "1.1.0"):
        signed.register_model("diabetes", version, MODELS[0.0])
    signed.promote_model("diabetes", "1.0.0", "production")
    signed.promote_model("diabetes", "1.1.0", "production")
    stage_file = root / "diabetes" / "stages.json"
    state = json.loads(stage_file.read_text())
    state["history"] = state["history"][:1]  # a sound history that puts 1.0.0 back in production
    state["previous_production"] = []
    stage_file.write_text(json.dumps(state))
    with pytest.raises(ModelFormatError) as error:
        signed.load_model("diabetes", "production")
    message = _message(error, tmp_path)
    assert "<tmp>/registry/diabetes/stages.json" in message and "signature does not match" in message
    assert ModelRegistry(root).resolve("diabetes", "production") == "1.0.0"  # without the key it passes


@pytest.mark.section4
def test_a_stage_file_rewritten_without_the_key_is_refused_as_not_signed(root, tmp_path):
    signed = ModelRegistry(root, signing_key=KEY)
    for version in ("1.0.0", "1.1.0"):
        signed.register_model("diabetes", version, MODELS[0.0])
    signed.promote_model("diabetes", "1.0.0", "production")
    ModelRegistry(root).promote_model("diabetes", "1.1.0", "staging")  # a writer without the key
    assert "signature" not in json.loads((root / "diabetes" / "stages.json").read_text())
    with pytest.raises(ModelFormatError) as error:
        signed.get_stages("diabetes")
    assert "is not signed" in _message(error, tmp_path)


@pytest.mark.section4
def test_a_signed_registry_refuses_a_stage_file_that_is_not_signed(three_versions, root, tmp_path):
    three_versions.promote_model("diabetes", "1.0.0", "staging")
    with pytest.raises(ModelFormatError) as error:
        ModelRegistry(root, signing_key=KEY).get_stages("diabetes")
    assert "is not signed" in _message(error, tmp_path)


# --- 5. history and rollback ------------------------------------------------------------------------

def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


@pytest.mark.section5
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


@pytest.mark.section5
def test_history_timestamps_are_timezone_aware_utc(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "staging")
    (entry,) = three_versions.get_stage_history("diabetes")
    assert entry["timestamp"].utcoffset() == timedelta(0)


@pytest.mark.section5
def test_history_is_empty_before_any_promotion(three_versions):
    assert three_versions.get_stage_history("diabetes") == []


@pytest.mark.section5
def test_history_of_an_unknown_name_raises_model_not_found(registry, tmp_path):
    with pytest.raises(ModelNotFoundError) as error:
        registry.get_stage_history("cancer")
    assert "'cancer'" in _message(error, tmp_path)


@pytest.mark.section5
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


@pytest.mark.section5
def test_rollback_restores_the_previous_production_and_archives_the_current(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    three_versions.promote_model("diabetes", "1.1.0", "production")
    assert three_versions.rollback("diabetes") == "1.0.0"
    assert three_versions.get_stages("diabetes") == {"1.0.0": "production", "1.1.0": "archived", "2.0.0": "none"}
    np.testing.assert_array_equal(_predictions(three_versions.load_model("diabetes", "production")),
                                  _predictions(MODELS[0.0]))


@pytest.mark.section5
def test_rollback_is_recorded_in_the_history_with_its_reason(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    three_versions.promote_model("diabetes", "1.1.0", "production")
    three_versions.rollback("diabetes", reason="error rate doubled")
    last_two = three_versions.get_stage_history("diabetes")[-2:]
    assert {(e["version"], e["from_stage"], e["to_stage"], e["reason"]) for e in last_two} == {
        ("1.1.0", "production", "archived", "error rate doubled"),
        ("1.0.0", "archived", "production", "error rate doubled"),
    }


@pytest.mark.section5
def test_rollback_reason_defaults_to_rollback(three_versions):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    three_versions.promote_model("diabetes", "1.1.0", "production")
    three_versions.rollback("diabetes")
    assert three_versions.get_stage_history("diabetes")[-1]["reason"] == "rollback"


@pytest.mark.section5
def test_a_second_rollback_goes_further_back_not_forward(three_versions):
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        three_versions.promote_model("diabetes", version, "production")
    assert three_versions.rollback("diabetes") == "1.1.0"
    assert three_versions.rollback("diabetes") == "1.0.0"
    assert three_versions.get_stages("diabetes")["1.0.0"] == "production"
    with pytest.raises(ModelNotFoundError):
        three_versions.rollback("diabetes")


@pytest.mark.section5
def test_a_version_promoted_back_to_production_leaves_the_rollback_list(three_versions):
    for version in ("1.0.0", "1.1.0", "1.0.0"):
        three_versions.promote_model("diabetes", version, "production")
    assert three_versions.rollback("diabetes") == "1.1.0"  # not 1.0.0, the version being replaced
    with pytest.raises(ModelNotFoundError):
        three_versions.rollback("diabetes")


@pytest.mark.section5
def test_rollback_without_an_earlier_production_raises_model_not_found(three_versions, tmp_path):
    with pytest.raises(ModelNotFoundError) as error:
        three_versions.rollback("diabetes")
    assert "no earlier production version" in _message(error, tmp_path)
    three_versions.promote_model("diabetes", "1.0.0", "production")
    with pytest.raises(ModelNotFoundError):
        three_versions.rollback("diabetes")
    assert three_versions.get_stages("diabetes")["1.0.0"] == "production"


@pytest.mark.section5
def test_a_rollback_reason_that_is_not_text_is_refused_and_the_history_is_kept(three_versions, tmp_path):
    three_versions.promote_model("diabetes", "1.0.0", "production")
    three_versions.promote_model("diabetes", "2.0.0", "production")
    history = three_versions.get_stage_history("diabetes")
    with pytest.raises(ValidationError) as error:
        three_versions.rollback("diabetes", reason=["bad"])
    assert "reason must be a string or None" in _message(error, tmp_path)
    assert three_versions.get_stage_history("diabetes") == history
    assert three_versions.resolve("diabetes", "production") == "2.0.0"


@pytest.mark.parametrize("call", [
    pytest.param(lambda r: r.load_model("../diabetes", "1.0.0"), marks=pytest.mark.section3, id="load"),
    pytest.param(lambda r: r.list_versions("../diabetes"), marks=pytest.mark.section3, id="list"),
    pytest.param(lambda r: r.get_metadata("/etc"), marks=pytest.mark.section3, id="metadata"),
    pytest.param(lambda r: r.promote_model("../diabetes", "1.0.0", "staging"), marks=pytest.mark.section4,
                 id="promote"),
    pytest.param(lambda r: r.get_stages("Diabetes"), marks=pytest.mark.section4, id="stages"),
    pytest.param(lambda r: r.get_stage_history("/etc"), marks=pytest.mark.section5, id="history"),
    pytest.param(lambda r: r.rollback("Diabetes"), marks=pytest.mark.section5, id="rollback"),
])
def test_every_method_refuses_a_hostile_name(three_versions, call):
    with pytest.raises(ValidationError):
        call(three_versions)


# --- crashes and concurrent writers (notebook section 7) --------------------------------------------
#
# A writer is killed with SIGKILL (no cleanup, no `finally`) just before one of
# the steps through which its write reaches the disk; every step is tried in
# turn. The writer runs in a forked copy of this test process (no new import:
# milliseconds each), and the hook that kills it is deterministic.

FORK = multiprocessing.get_context("fork")
DISK_STEPS = ("mkdir", "fsync", "replace", "rename")
"""The os functions through which the registry's writes reach the disk."""

forking = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


def _count_disk_steps(monkeypatch, write: Callable[[], object]) -> int:
    """How many calls of ``DISK_STEPS`` functions ``write()`` makes."""
    calls = 0

    def counted(original):
        def call(*args, **kwargs):
            nonlocal calls
            calls += 1
            return original(*args, **kwargs)
        return call

    with monkeypatch.context() as patch:
        for name in DISK_STEPS:
            patch.setattr(os, name, counted(getattr(os, name)))
        write()
    return calls


def _die_before_step(n: int) -> None:
    """Make this process kill itself just before its ``n``-th call of a ``DISK_STEPS`` function (1 is the first)."""
    calls = 0

    def hooked(original):
        def call(*args, **kwargs):
            nonlocal calls
            calls += 1
            if calls == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        return call

    for name in DISK_STEPS:
        setattr(os, name, hooked(getattr(os, name)))


def _in_child(work: Callable[..., object], *args) -> int:
    """Run ``work(*args)`` in a forked child process; its exit code (``-signal.SIGKILL`` if it was killed)."""
    child = FORK.Process(target=work, args=args)
    child.start()
    child.join(timeout=120)
    if child.exitcode is None:
        child.kill()
        child.join()
        pytest.fail("the child process did not finish within 120 s")
    return child.exitcode


def _register_killed_before_step(root: Path, step: int, name: str, version: str) -> None:
    registry = ModelRegistry(root)
    _die_before_step(step)
    registry.register_model(name, version, MODELS[2.0])


def _promote_killed_before_step(root: Path, step: int) -> None:
    registry = ModelRegistry(root)
    _die_before_step(step)
    registry.promote_model("diabetes", "1.1.0", "production", reason="never recorded")


def _leftovers(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.name.endswith(".tmp")]


@forking
@pytest.mark.section3
def test_register_killed_at_any_step_leaves_the_old_versions_or_the_new_one_complete(tmp_path, monkeypatch):
    def registry_with_one_version(root: Path) -> ModelRegistry:
        registry = ModelRegistry(root)
        registry.register_model("diabetes", "1.0.0", MODELS[0.0])
        return registry

    scratch = registry_with_one_version(tmp_path / "scratch")
    steps = _count_disk_steps(monkeypatch, lambda: scratch.register_model("diabetes", "2.0.0", MODELS[2.0]))
    assert steps >= 3
    outcomes = []
    for step in range(1, steps + 1):
        root = tmp_path / f"killed-before-step-{step}"
        registry_with_one_version(root)
        assert _in_child(_register_killed_before_step, root, step, "diabetes", "2.0.0") == -signal.SIGKILL
        registry = ModelRegistry(root)
        versions = registry.list_versions("diabetes")
        assert versions in (["1.0.0"], ["1.0.0", "2.0.0"]), f"killed before step {step}"
        np.testing.assert_array_equal(_predictions(registry.load_model("diabetes", "1.0.0")),
                                      _predictions(MODELS[0.0]))
        if versions == ["1.0.0"]:  # the lock was released, and the leftovers do not get in the way
            registry.register_model("diabetes", "2.0.0", MODELS[2.0])
        np.testing.assert_array_equal(_predictions(registry.load_model("diabetes", "2.0.0")),
                                      _predictions(MODELS[2.0]))
        registry.register_model("diabetes", "3.0.0", MODELS[3.0])  # the next writer clears the leftovers
        assert _leftovers(root) == [], f"killed before step {step}"
        outcomes.append(len(versions))
    assert 1 in outcomes and 2 in outcomes  # the kills fell on both sides of the commit


@forking
@pytest.mark.section3
def test_a_first_registration_killed_at_any_step_leaves_no_model_or_a_complete_one(tmp_path, monkeypatch):
    scratch = ModelRegistry(tmp_path / "scratch")
    steps = _count_disk_steps(monkeypatch, lambda: scratch.register_model("wine", "1.0.0", MODELS[2.0]))
    outcomes = []
    for step in range(1, steps + 1):
        root = tmp_path / f"killed-before-step-{step}"
        ModelRegistry(root)
        assert _in_child(_register_killed_before_step, root, step, "wine", "1.0.0") == -signal.SIGKILL
        registry = ModelRegistry(root)
        models = registry.list_models()
        assert models in ([], ["wine"]), f"killed before step {step}"
        if models:
            assert registry.list_versions("wine") == ["1.0.0"]
            np.testing.assert_array_equal(_predictions(registry.load_model("wine", "1.0.0")),
                                          _predictions(MODELS[2.0]))
        else:
            with pytest.raises(ModelNotFoundError):
                registry.list_versions("wine")
        outcomes.append(len(models))
    assert 0 in outcomes and 1 in outcomes


@forking
@pytest.mark.section4
def test_promote_killed_at_any_step_keeps_the_old_stages_or_makes_the_whole_change(tmp_path, monkeypatch):
    def registry_in_production(root: Path) -> ModelRegistry:
        registry = ModelRegistry(root, clock=StepClock())
        for version in ("1.0.0", "1.1.0"):
            registry.register_model("diabetes", version, MODELS[0.0])
        registry.promote_model("diabetes", "1.0.0", "production")
        return registry

    scratch = registry_in_production(tmp_path / "scratch")
    steps = _count_disk_steps(monkeypatch, lambda: scratch.promote_model("diabetes", "1.1.0", "production"))
    old, new = {"1.0.0": "production", "1.1.0": "none"}, {"1.0.0": "archived", "1.1.0": "production"}
    outcomes = []
    for step in range(1, steps + 1):
        root = tmp_path / f"killed-before-step-{step}"
        registry_in_production(root)
        assert _in_child(_promote_killed_before_step, root, step) == -signal.SIGKILL
        reopened = ModelRegistry(root)
        stages = reopened.get_stages("diabetes")
        assert stages in (old, new), f"killed before step {step}"
        if stages == old:  # the lock was released
            reopened.promote_model("diabetes", "1.1.0", "production")
        reopened.promote_model("diabetes", "1.0.0", "staging")  # the next writer clears the leftovers
        assert _leftovers(root) == [], f"killed before step {step}"
        outcomes.append(stages == new)
    assert False in outcomes and True in outcomes


def _register_and_promote(root: Path, worker: int, start) -> None:
    """Wait at the ``start`` barrier, then register 10 versions of 'shared' (major: ``worker``), each put in staging."""
    registry = ModelRegistry(root)
    start.wait(timeout=60)
    for i in range(10):
        version = f"{worker}.{i}.0"
        registry.register_model("shared", version, MODELS[0.0], metadata={"worker": worker})
        registry.promote_model("shared", version, "staging", reason=f"worker {worker}")


@forking
@pytest.mark.section5
def test_four_processes_registering_and_promoting_at_once_lose_nothing(root):
    ModelRegistry(root)
    start = FORK.Barrier(4)
    writers = [FORK.Process(target=_register_and_promote, args=(root, worker, start)) for worker in range(1, 5)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    for writer in writers:
        if writer.exitcode is None:
            writer.kill()
            writer.join()
    assert [writer.exitcode for writer in writers] == [0, 0, 0, 0]
    registry = ModelRegistry(root)
    expected = [f"{w}.{i}.0" for w in range(1, 5) for i in range(10)]
    assert registry.list_versions("shared") == expected
    promoted = [e["version"] for e in registry.get_stage_history("shared") if e["to_stage"] == "staging"]
    assert sorted(promoted) == sorted(expected)
    assert list(registry.get_stages("shared").values()).count("staging") == 1
