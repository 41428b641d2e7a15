"""Part 1: saving and loading models as JSON files, safely.

Read with notebooks/01_train_and_serialize.ipynb. Run just this part with
``pytest -m part1`` (or ``make grade PART=1``).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sklearn import linear_model as sk_linear
from sklearn import pipeline as sk_pipeline
from sklearn import preprocessing as sk_preprocessing
from sklearn.tree import DecisionTreeClassifier

from deployment import (
    LinearRegression,
    LogisticRegression,
    ModelFormatError,
    Pipeline,
    SerializedModel,
    StandardScaler,
    ValidationError,
    atomic_write_text,
    build_model,
    load_dataset,
    load_model,
    load_serialized,
    save_model,
)

pytestmark = pytest.mark.part1

CANCER = load_dataset("breast_cancer", seed=0)
WINE = load_dataset("wine", seed=0)
DIABETES = load_dataset("diabetes", seed=0)


def _fitted_models():
    """(id, model, data) for every model type that must round-trip."""
    return [
        ("linear", LinearRegression().fit(DIABETES.X_train, DIABETES.y_train), DIABETES),
        ("ridge", LinearRegression(alpha=2.5).fit(DIABETES.X_train, DIABETES.y_train), DIABETES),
        ("logistic-binary", Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
         .fit(CANCER.X_train, CANCER.y_train), CANCER),
        ("logistic-multiclass", Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=0.5))])
         .fit(WINE.X_train, WINE.y_train), WINE),
        ("sklearn-linear", sk_linear.LinearRegression().fit(DIABETES.X_train, DIABETES.y_train), DIABETES),
        ("sklearn-ridge", sk_linear.Ridge(alpha=0.7).fit(DIABETES.X_train, DIABETES.y_train), DIABETES),
        ("sklearn-logistic-multiclass", sk_pipeline.make_pipeline(
            sk_preprocessing.StandardScaler(), sk_linear.LogisticRegression(max_iter=1000))
         .fit(WINE.X_train, WINE.y_train), WINE),
        ("sklearn-logistic-binary", sk_pipeline.make_pipeline(
            sk_preprocessing.StandardScaler(), sk_linear.LogisticRegression(max_iter=1000))
         .fit(CANCER.X_train, CANCER.y_train), CANCER),
    ]


MODELS = _fitted_models()


def _outputs(model, X):
    """Everything a model computes on X, as one array, to compare bit for bit."""
    if hasattr(model, "predict_proba"):
        return np.column_stack([model.predict_proba(X), model.predict(X)])
    if hasattr(model, "predict"):
        return model.predict(X)
    return model.transform(X)


@pytest.fixture
def cancer_model():
    return MODELS[2][1]


@pytest.fixture
def saved(tmp_path, cancer_model):
    """A saved binary classifier and its path."""
    path = save_model(cancer_model, tmp_path / "cancer.json", version="1.2.3",
                      metadata={"accuracy": 0.96, "dataset": "breast_cancer"})
    return path


def _rewrite(path: Path, change) -> None:
    """Load the file's JSON, let ``change`` edit it, and write it back."""
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def _reseal(document: dict) -> None:
    """Recompute the checksum, as a careful forger would."""
    canonical = json.dumps(document["parameters"], sort_keys=True, separators=(",", ":"))
    document["checksum"] = hashlib.sha256(canonical.encode()).hexdigest()


# --- round trips ------------------------------------------------------------------------

def test_save_returns_the_path_of_a_json_file(tmp_path, cancer_model):
    path = save_model(cancer_model, tmp_path / "model.json")
    assert path == tmp_path / "model.json"
    assert isinstance(json.loads(path.read_text()), dict)


@pytest.mark.parametrize("name, model, data", MODELS, ids=[m[0] for m in MODELS])
def test_reloaded_model_gives_bit_identical_predictions(tmp_path, name, model, data):
    path = save_model(model, tmp_path / f"{name}.json")
    reloaded = load_model(path)
    assert type(reloaded) is type(model)
    np.testing.assert_array_equal(_outputs(reloaded, data.X_test), _outputs(model, data.X_test))


def test_standard_scaler_round_trips_exactly(tmp_path):
    scaler = StandardScaler().fit(CANCER.X_train)
    reloaded = load_model(save_model(scaler, tmp_path / "scaler.json"))
    np.testing.assert_array_equal(reloaded.transform(CANCER.X_test), scaler.transform(CANCER.X_test))


def test_large_model_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 20_000))
    model = LinearRegression(alpha=1.0).fit(X, rng.normal(size=50))
    reloaded = load_model(save_model(model, tmp_path / "large.json"))
    np.testing.assert_array_equal(reloaded.coef_, model.coef_)
    assert reloaded.intercept_ == model.intercept_


def test_arrays_keep_their_dtype_and_shape(tmp_path):
    model = MODELS[3][1].named_steps["model"]  # 3 classes: coef (3, 13), integer labels
    reloaded = load_model(save_model(model, tmp_path / "wine.json"))
    assert reloaded.coef_.shape == model.coef_.shape == (3, 13)
    assert reloaded.coef_.dtype == np.float64
    assert reloaded.classes_.dtype == model.classes_.dtype
    np.testing.assert_array_equal(reloaded.classes_, model.classes_)


def test_string_class_labels_round_trip(tmp_path):
    labels = np.array(["benign", "malignant"])[CANCER.y_train]
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(CANCER.X_train, labels)
    reloaded = load_model(save_model(model, tmp_path / "labels.json"))
    assert list(reloaded.predict(CANCER.X_test[:20])) == list(model.predict(CANCER.X_test[:20]))


# --- the envelope -------------------------------------------------------------------------

def test_envelope_holds_type_version_format_and_metadata(saved):
    document = json.loads(saved.read_text())
    assert document["type"] == "deployment.Pipeline"
    assert document["version"] == "1.2.3"
    assert document["format_version"] == 1
    assert document["metadata"]["accuracy"] == 0.96
    assert document["metadata"]["dataset"] == "breast_cancer"


def test_checksum_is_sha256_of_canonical_parameters(saved):
    document = json.loads(saved.read_text())
    canonical = json.dumps(document["parameters"], sort_keys=True, separators=(",", ":"))
    assert document["checksum"] == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_trained_at_defaults_to_now_in_utc(tmp_path, cancer_model):
    before = datetime.now(timezone.utc)
    path = save_model(cancer_model, tmp_path / "model.json")
    after = datetime.now(timezone.utc)
    stamp = json.loads(path.read_text())["metadata"]["trained_at"]
    assert stamp.endswith("Z")
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= moment <= after + timedelta(seconds=1)


def test_trained_at_datetime_is_written_in_utc(tmp_path, cancer_model):
    paris = timezone(timedelta(hours=1))
    path = save_model(cancer_model, tmp_path / "model.json",
                      metadata={"trained_at": datetime(2026, 1, 31, 13, 0, tzinfo=paris)})
    assert json.loads(path.read_text())["metadata"]["trained_at"] == "2026-01-31T12:00:00Z"


def test_small_arrays_are_readable_numbers(saved):
    text = saved.read_text()
    assert "\n  " in text  # indented, one field a line
    document = json.loads(text)
    coef = document["parameters"]["steps"][1]["state"]["coef"]
    assert coef["dtype"] == "float64" and coef["shape"] == [1, 30]
    assert all(isinstance(value, float) for value in coef["data"])


def test_load_serialized_returns_the_envelope_without_building(saved):
    envelope = load_serialized(saved)
    assert isinstance(envelope, SerializedModel)
    assert envelope.type == "deployment.Pipeline"
    assert envelope.version == "1.2.3"
    assert envelope.format_version == 1
    assert envelope.metadata["accuracy"] == 0.96
    assert envelope.checksum == json.loads(saved.read_text())["checksum"]
    assert isinstance(envelope.parameters, dict) and "steps" in envelope.parameters


def test_build_model_rebuilds_from_a_checked_envelope(saved, cancer_model):
    rebuilt = build_model(load_serialized(saved), str(saved))
    np.testing.assert_array_equal(rebuilt.predict_proba(CANCER.X_test), cancer_model.predict_proba(CANCER.X_test))


# --- versions -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1.0.0", "0.1.0", "2.1.0-rc.1", "1.0.0+build.7", "10.20.30"])
def test_semantic_versions_are_accepted(tmp_path, cancer_model, version):
    path = save_model(cancer_model, tmp_path / "model.json", version=version)
    assert load_serialized(path).version == version


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0.0", "1.0.0\n", "", "latest", None, 1])
def test_bad_versions_are_refused(tmp_path, cancer_model, version):
    with pytest.raises(ValidationError, match="version"):
        save_model(cancer_model, tmp_path / "model.json", version=version)
    assert not (tmp_path / "model.json").exists()


# --- refusals at save time ----------------------------------------------------------------

@pytest.mark.parametrize("model", [LogisticRegression(), LinearRegression(), sk_linear.Ridge(),
                                   Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])],
                         ids=["logistic", "linear", "sklearn-ridge", "pipeline"])
def test_unfitted_models_are_refused(tmp_path, model):
    with pytest.raises(ValidationError, match="(?i)fit"):
        save_model(model, tmp_path / "model.json")
    assert not (tmp_path / "model.json").exists()


def test_unsupported_model_is_refused_naming_the_type_and_the_supported_ones(tmp_path):
    tree = DecisionTreeClassifier().fit(CANCER.X_train, CANCER.y_train)
    with pytest.raises(ValidationError) as error:
        save_model(tree, tmp_path / "tree.json")
    assert "DecisionTreeClassifier" in str(error.value)
    assert "LogisticRegression" in str(error.value)


def test_metadata_json_cannot_hold_is_refused(tmp_path, cancer_model):
    with pytest.raises(ValidationError, match="metadata"):
        save_model(cancer_model, tmp_path / "model.json", metadata={"owner": object()})


def test_non_finite_accuracy_is_refused(tmp_path, cancer_model):
    with pytest.raises(ValidationError, match="accuracy"):
        save_model(cancer_model, tmp_path / "model.json", metadata={"accuracy": float("nan")})


def test_model_with_nan_parameters_is_refused(tmp_path):
    model = LinearRegression().fit(DIABETES.X_train, DIABETES.y_train)
    model.coef_ = model.coef_.copy()
    model.coef_[3] = np.nan
    with pytest.raises(ValidationError):
        save_model(model, tmp_path / "model.json")


def test_save_into_a_missing_folder_raises_file_not_found(tmp_path, cancer_model):
    with pytest.raises(FileNotFoundError):
        save_model(cancer_model, tmp_path / "no" / "such" / "model.json")


# --- crash safety -----------------------------------------------------------------------

def test_failed_save_leaves_the_earlier_file_intact(saved, cancer_model):
    before = saved.read_bytes()
    with pytest.raises(ValidationError):
        save_model(cancer_model, saved, version="2.0.0", metadata={"owner": object()})
    assert saved.read_bytes() == before
    assert load_serialized(saved).version == "1.2.3"


def test_failed_save_leaves_no_temporary_files(saved, cancer_model):
    before = sorted(os.listdir(saved.parent))
    with pytest.raises(ValidationError):
        save_model(cancer_model, saved, metadata={"owner": object()})
    assert sorted(os.listdir(saved.parent)) == before


def test_overwriting_replaces_the_file_whole(saved, cancer_model):
    save_model(cancer_model, saved, version="2.0.0")
    assert load_serialized(saved).version == "2.0.0"
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text("old\n")
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["notes.json"]


def test_atomic_write_that_fails_keeps_the_old_file(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text("old\n")
    with pytest.raises(TypeError):
        atomic_write_text(path, b"bytes are not text")  # fails while writing the temporary file
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["notes.json"]


def test_atomic_write_whose_rename_fails_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "notes.json"
    path.write_text("old\n")

    def full_disk(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", full_disk)  # Path.replace calls os.replace too
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["notes.json"]


KILLED_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from deployment import LinearRegression, save_model
    rng = np.random.default_rng(0)
    model = LinearRegression().fit(rng.normal(size=(5, 200_000)), rng.normal(size=5))
    save_model(model, sys.argv[1], version="1.0.0")
    print("saved", flush=True)
    i = 1
    while True:  # the test kills this process mid-write
        i += 1
        save_model(model, sys.argv[1], version=f"{i}.0.0")
""")


@pytest.mark.parametrize("delay_s", [0.01, 0.1, 0.3])
def test_save_killed_midway_leaves_a_complete_file(tmp_path, delay_s):
    path = tmp_path / "model.json"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "saved", writer.stderr.read()
        time.sleep(delay_s)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    model = load_model(path)  # complete: one of the versions the writer finished
    assert model.coef_.shape == (200_000,)
    assert load_serialized(path).version.endswith(".0.0")
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["model.json"]


# --- refusals at load time: every one names the file ------------------------------------

def _assert_refused(path: Path, pattern: str) -> None:
    with pytest.raises(ModelFormatError, match=pattern) as error:
        load_model(path)
    assert str(path) in str(error.value)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.json")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("")
    _assert_refused(path, "(?i)empty")


def test_text_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text("this is not a model\n")
    _assert_refused(path, "(?i)json")


def test_truncated_file_is_refused(saved):
    text = saved.read_text()
    saved.write_text(text[: len(text) // 2])
    _assert_refused(saved, "(?i)truncated")


def test_json_that_is_not_an_object_is_refused(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2, 3]")
    _assert_refused(path, "(?i)object")


def test_unknown_model_type_is_refused(saved):
    _rewrite(saved, lambda d: d.update(type="sklearn.DecisionTreeClassifier"))
    _assert_refused(saved, "DecisionTreeClassifier")


def test_loading_never_imports_a_module_the_file_names(saved, tmp_path, monkeypatch):
    trap = tmp_path / "trap_module.py"
    flag = tmp_path / "imported"
    trap.write_text(f"open({str(flag)!r}, 'w').close()\nclass Model: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _rewrite(saved, lambda d: d.update(type="trap_module.Model"))
    _assert_refused(saved, "trap_module")
    assert not flag.exists()
    assert "trap_module" not in sys.modules


def test_newer_format_version_is_refused(saved):
    _rewrite(saved, lambda d: d.update(format_version=99))
    _assert_refused(saved, "(?i)newer")


@pytest.mark.parametrize("value", [None, "1", 0, 1.5])
def test_ill_typed_format_version_is_refused(saved, value):
    _rewrite(saved, lambda d: d.update(format_version=value))
    _assert_refused(saved, "format_version")


@pytest.mark.parametrize("field", ["type", "version", "parameters", "metadata", "checksum", "format_version"])
def test_missing_field_is_refused(saved, field):
    _rewrite(saved, lambda d: d.pop(field))
    _assert_refused(saved, field)


def test_ill_typed_parameters_are_refused(saved):
    _rewrite(saved, lambda d: d.update(parameters=[1, 2, 3]))
    _assert_refused(saved, "parameters")


def test_bad_version_in_file_is_refused(saved):
    _rewrite(saved, lambda d: d.update(version="one"))
    _assert_refused(saved, "(?i)version")


def test_tampered_parameters_fail_the_checksum(saved):
    def tamper(document):
        document["parameters"]["steps"][1]["state"]["coef"]["data"][0] += 1.0
    _rewrite(saved, tamper)
    _assert_refused(saved, "(?i)checksum")


def test_shapes_that_do_not_fit_are_refused(saved):
    def reshape(document):
        coef = document["parameters"]["steps"][1]["state"]["coef"]
        coef["shape"], coef["data"] = [1, 29], coef["data"][:29]
        _reseal(document)
    _rewrite(saved, reshape)
    _assert_refused(saved, "(?i)feature|shape")


def test_data_that_does_not_fill_the_shape_is_refused(saved):
    def shorten(document):
        coef = document["parameters"]["steps"][1]["state"]["coef"]
        coef["data"] = coef["data"][:10]
        _reseal(document)
    _rewrite(saved, shorten)
    _assert_refused(saved, "(?i)shape")


def test_nan_in_parameters_is_refused(saved):
    text = saved.read_text()
    document = json.loads(text)
    first = document["parameters"]["steps"][1]["state"]["coef"]["data"][0]
    saved.write_text(text.replace(repr(first), "NaN", 1))
    _assert_refused(saved, "(?i)nan")


def test_non_finite_parameters_resealed_are_refused(saved):
    def infinite(document):
        document["parameters"]["steps"][0]["state"]["scale"]["data"][0] = 1e309
        _reseal(document)
    _rewrite(saved, infinite)
    _assert_refused(saved, "(?i)infinite|finite")


def test_wrong_dtype_is_refused(saved):
    def relabel(document):
        document["parameters"]["steps"][1]["state"]["coef"]["dtype"] = "object"
        _reseal(document)
    _rewrite(saved, relabel)
    _assert_refused(saved, "dtype")
