"""Part 1: saving and loading models as JSON files, safely.

Read with notebooks/01_train_and_serialize.ipynb. Run just this part with
``pytest -m part1`` (or ``make grade PART=1``), one section with
``pytest -m "part1 and section3"`` (or ``make grade PART=1 SECTION=3``).

Every refusal test matches the message with the file's path taken out
(pytest's ``tmp_path`` holds the test's name, which would match almost
any word), so only the words the code writes can satisfy it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sklearn import linear_model as sk_linear
from sklearn import pipeline as sk_pipeline
from sklearn import preprocessing as sk_preprocessing
from sklearn.tree import DecisionTreeClassifier

from deployment import (
    MAX_ARRAY_DIMENSIONS,
    MAX_ARRAY_ELEMENTS,
    MAX_FILE_BYTES,
    MAX_JSON_DEPTH,
    MAX_STRING_LENGTH,
    LinearRegression,
    LogisticRegression,
    ModelFormatError,
    Pipeline,
    SerializedModel,
    StandardScaler,
    ValidationError,
    atomic_write_text,
    build_model,
    check_signature,
    decode_array,
    encode_array,
    envelope_signature,
    load_dataset,
    load_model,
    load_serialized,
    parameters_checksum,
    save_model,
)
from deployment.versions import MAX_VERSION_LENGTH

pytestmark = pytest.mark.part1

CANCER = load_dataset("breast_cancer", seed=0)
WINE = load_dataset("wine", seed=0)
DIABETES = load_dataset("diabetes", seed=0)
KEY = b"a secret shared by the trainer and the server"


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
SKLEARN_MULTICLASS = MODELS[6][1]


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
    """A saved binary classifier (a scaler, then a logistic regression) and its path."""
    return save_model(cancer_model, tmp_path / "cancer.json", version="1.2.3",
                      metadata={"accuracy": 0.96, "dataset": "breast_cancer"})


@pytest.fixture
def signed(tmp_path, cancer_model):
    """The same model, saved signed with KEY."""
    return save_model(cancer_model, tmp_path / "signed.json", version="1.2.3",
                      metadata={"accuracy": 0.96}, signing_key=KEY)


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _rewrite(path: Path, change) -> None:
    """Load the file's JSON, let ``change`` edit it, and write it back."""
    document = _read(path)
    change(document)
    path.write_text(json.dumps(document))


def _reseal(document: dict) -> None:
    """Recompute the checksum, as a careful forger would."""
    canonical = json.dumps(document["parameters"], sort_keys=True, separators=(",", ":"))
    document["checksum"] = hashlib.sha256(canonical.encode()).hexdigest()


def _coef(document: dict) -> dict:
    """The encoded coefficients of the logistic regression step."""
    return document["parameters"]["steps"][1]["state"]["coef"]


def _forge_coef(path: Path, **changes) -> None:
    """Replace fields of the coefficient array and recompute the checksum."""
    def forge(document):
        coef = _coef(document)
        for key, value in changes.items():
            if value is None:
                coef.pop(key, None)
            else:
                coef[key] = value
        _reseal(document)
    _rewrite(path, forge)


def _without_path(message: str, path: Path) -> str:
    """The message with the file's path (which holds the test's name) taken out."""
    return message.replace(str(path), "<file>")


def _refusal(path: Path, **load_options) -> str:
    """Load ``path``, expect a ModelFormatError that names it, return its message without the path."""
    with pytest.raises(ModelFormatError) as error:
        load_model(path, **load_options)
    message = str(error.value)
    assert str(path) in message, f"the message does not name the file: {message!r}"
    return _without_path(message, path)


def _assert_refused(path: Path, pattern: str, **load_options) -> None:
    message = _refusal(path, **load_options)
    assert re.search(pattern, message), f"{message!r} does not say {pattern!r}"


def _nested(depth: int) -> str:
    """JSON text of lists nested ``depth`` deep."""
    return "[" * depth + "]" * depth


def _with_metadata_text(path: Path, text: str) -> None:
    """Put raw JSON ``text`` under metadata["extra"] (the checksum covers only the parameters)."""
    document = _read(path)
    document["metadata"]["extra"] = "EXTRA"
    path.write_text(json.dumps(document).replace('"EXTRA"', text, 1))


# =========================================================================================
# Section 2: saving a model
# =========================================================================================

@pytest.mark.section2
def test_save_returns_the_path_of_a_json_file(tmp_path, cancer_model):
    path = save_model(cancer_model, tmp_path / "model.json")
    assert path == tmp_path / "model.json"
    assert isinstance(_read(path), dict)


@pytest.mark.section2
def test_save_accepts_a_string_path(tmp_path, cancer_model):
    path = save_model(cancer_model, str(tmp_path / "model.json"))
    assert path == tmp_path / "model.json" and path.is_file()


@pytest.mark.section2
def test_envelope_holds_type_version_format_and_metadata(saved):
    document = _read(saved)
    assert document["type"] == "deployment.Pipeline"
    assert document["version"] == "1.2.3"
    assert document["format_version"] == 1
    assert document["metadata"]["accuracy"] == 0.96
    assert document["metadata"]["dataset"] == "breast_cancer"
    assert "signature" not in document


@pytest.mark.section2
def test_checksum_is_sha256_of_canonical_parameters(saved):
    document = _read(saved)
    canonical = json.dumps(document["parameters"], sort_keys=True, separators=(",", ":"))
    assert document["checksum"] == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@pytest.mark.section2
def test_parameters_checksum_ignores_key_order_and_sees_every_value():
    expected = hashlib.sha256(b'{"a":[0.5,2],"b":"x"}').hexdigest()
    assert parameters_checksum({"b": "x", "a": [0.5, 2]}) == expected
    assert parameters_checksum({"b": "x", "a": [0.5, 3]}) != expected


@pytest.mark.section2
def test_trained_at_defaults_to_now_in_utc(tmp_path, cancer_model):
    before = datetime.now(timezone.utc)
    path = save_model(cancer_model, tmp_path / "model.json")
    after = datetime.now(timezone.utc)
    stamp = _read(path)["metadata"]["trained_at"]
    assert stamp.endswith("Z")
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= moment <= after + timedelta(seconds=1)


@pytest.mark.section2
def test_trained_at_datetime_is_written_in_utc(tmp_path, cancer_model):
    paris = timezone(timedelta(hours=1))
    path = save_model(cancer_model, tmp_path / "model.json",
                      metadata={"trained_at": datetime(2026, 1, 31, 13, 0, tzinfo=paris)})
    assert _read(path)["metadata"]["trained_at"] == "2026-01-31T12:00:00Z"


@pytest.mark.section2
def test_file_is_indented_json(saved):
    assert saved.read_text().startswith('{\n  "')


@pytest.mark.section2
def test_small_arrays_are_readable_numbers(saved):
    coef = _coef(_read(saved))
    assert coef["dtype"] == "float64" and coef["shape"] == [1, 30]
    assert all(isinstance(value, float) for value in coef["data"])


@pytest.mark.section2
def test_encode_array_writes_up_to_the_inline_limit_as_numbers():
    array = np.linspace(0.0, 1.0, 10_000)
    encoded = encode_array(array)
    assert encoded["data"] == array.tolist() and "base64" not in encoded


@pytest.mark.section2
def test_encode_array_writes_larger_arrays_as_little_endian_base64():
    array = np.linspace(0.0, 1.0, 10_001)
    encoded = encode_array(array)
    assert "data" not in encoded
    assert base64.b64decode(encoded["base64"]) == array.astype("<f8").tobytes()
    assert encoded["dtype"] == "float64" and encoded["shape"] == [10_001]


@pytest.mark.section2
@pytest.mark.parametrize("array, dtype", [
    (np.array([1.5, -2.0], dtype=np.float32), "float32"),
    (np.array([[1, -2]], dtype=np.int32), "int32"),
    (np.array([3, 4], dtype=np.int64), "int64"),
    (np.array([True, False]), "bool"),
    (np.array(["benign", "malignant"]), "str"),
], ids=["float32", "int32", "int64", "bool", "str"])
def test_encode_array_names_the_dtype_and_keeps_the_values(array, dtype):
    encoded = encode_array(array)
    assert encoded == {"dtype": dtype, "shape": list(array.shape), "data": array.ravel().tolist()}


@pytest.mark.section2
def test_encode_array_marks_a_fortran_ordered_matrix_and_writes_it_row_major():
    matrix = np.asfortranarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    encoded = encode_array(matrix)
    assert encoded["order"] == "F"
    assert encoded["data"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert "order" not in encode_array(np.ascontiguousarray(matrix))


@pytest.mark.section2
def test_encode_array_refuses_an_unsupported_dtype():
    with pytest.raises(ValidationError, match="complex128"):
        encode_array(np.array([1 + 2j]))


@pytest.mark.section2
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_encode_array_refuses_non_finite_numbers(value):
    with pytest.raises(ValidationError, match="NaN or infinite"):
        encode_array(np.array([1.0, value]))


@pytest.mark.section2
def test_encode_array_refuses_too_many_dimensions():
    encode_array(np.zeros((1,) * MAX_ARRAY_DIMENSIONS))
    with pytest.raises(ValidationError, match=f"{MAX_ARRAY_DIMENSIONS + 1} dimensions; the limit is {MAX_ARRAY_DIMENSIONS}"):
        encode_array(np.zeros((1,) * (MAX_ARRAY_DIMENSIONS + 1)))


@pytest.mark.section2
def test_encode_array_refuses_too_many_elements():
    with pytest.raises(ValidationError, match=f"limit is {MAX_ARRAY_ELEMENTS:,} elements"):
        encode_array(np.zeros(MAX_ARRAY_ELEMENTS + 1, dtype=bool))


@pytest.mark.section2
def test_encode_array_refuses_a_string_longer_than_the_limit():
    encode_array(np.array(["x" * MAX_STRING_LENGTH]))
    with pytest.raises(ValidationError, match=f"longer than {MAX_STRING_LENGTH:,} characters"):
        encode_array(np.array(["x" * (MAX_STRING_LENGTH + 1), "y"]))


@pytest.mark.section2
@pytest.mark.parametrize("version", ["1.0.0", "0.1.0", "2.1.0-rc.1", "1.0.0+build.7", "10.20.30"])
def test_semantic_versions_are_written(tmp_path, cancer_model, version):
    path = save_model(cancer_model, tmp_path / "model.json", version=version)
    assert _read(path)["version"] == version


@pytest.mark.section2
@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0.0", "1.0.0\n", "", "latest", None, 1])
def test_bad_versions_are_refused(tmp_path, cancer_model, version):
    with pytest.raises(ValidationError, match="is not a semantic version"):
        save_model(cancer_model, tmp_path / "model.json", version=version)
    assert not (tmp_path / "model.json").exists()


@pytest.mark.section2
def test_a_version_longer_than_the_limit_is_refused(tmp_path, cancer_model):
    longest = "1.0.0-" + "a" * (MAX_VERSION_LENGTH - 6)
    assert _read(save_model(cancer_model, tmp_path / "model.json", version=longest))["version"] == longest
    with pytest.raises(ValidationError, match=f"{MAX_VERSION_LENGTH + 1} characters long; the limit is {MAX_VERSION_LENGTH}"):
        save_model(cancer_model, tmp_path / "other.json", version=longest + "a")
    assert not (tmp_path / "other.json").exists()


@pytest.mark.section2
@pytest.mark.parametrize("model", [LogisticRegression(), LinearRegression(), sk_linear.Ridge(),
                                   Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])],
                         ids=["logistic", "linear", "sklearn-ridge", "pipeline"])
def test_unfitted_models_are_refused(tmp_path, model):
    with pytest.raises(ValidationError, match="unfitted"):
        save_model(model, tmp_path / "model.json")
    assert not (tmp_path / "model.json").exists()


@pytest.mark.section2
def test_unsupported_model_is_refused_naming_the_type_and_the_supported_ones(tmp_path):
    tree = DecisionTreeClassifier().fit(CANCER.X_train, CANCER.y_train)
    with pytest.raises(ValidationError) as error:
        save_model(tree, tmp_path / "tree.json")
    assert "DecisionTreeClassifier" in str(error.value)
    assert "deployment.LogisticRegression" in str(error.value)


@pytest.mark.section2
def test_metadata_json_cannot_hold_is_refused(tmp_path, cancer_model):
    path = tmp_path / "m.json"
    with pytest.raises(ValidationError) as error:
        save_model(cancer_model, path, metadata={"owner": object()})
    assert "metadata" in _without_path(str(error.value), path)
    assert not path.exists()


@pytest.mark.section2
@pytest.mark.parametrize("accuracy", [float("nan"), float("inf"), "0.9", True])
def test_accuracy_that_is_not_a_finite_number_is_refused(tmp_path, cancer_model, accuracy):
    with pytest.raises(ValidationError, match=r"metadata\['accuracy'\] must be a finite number"):
        save_model(cancer_model, tmp_path / "model.json", metadata={"accuracy": accuracy})


@pytest.mark.section2
def test_model_with_nan_parameters_is_refused(tmp_path):
    model = LinearRegression().fit(DIABETES.X_train, DIABETES.y_train)
    model.coef_ = model.coef_.copy()
    model.coef_[3] = np.nan
    with pytest.raises(ValidationError, match="NaN or infinite"):
        save_model(model, tmp_path / "model.json")
    assert not (tmp_path / "model.json").exists()


@pytest.mark.section2
def test_metadata_nested_deeper_than_the_limit_is_refused(tmp_path, cancer_model):
    deepest = []  # the envelope is level 1, metadata level 2: this value fills levels 3 to 32
    for _ in range(MAX_JSON_DEPTH - 2 - 1):
        deepest = [deepest]
    save_model(cancer_model, tmp_path / "deepest.json", metadata={"extra": deepest})
    path = tmp_path / "m.json"
    with pytest.raises(ValidationError) as error:
        save_model(cancer_model, path, metadata={"extra": [deepest]})
    assert f"nests deeper than {MAX_JSON_DEPTH} levels" in _without_path(str(error.value), path)
    assert not path.exists()


@pytest.mark.section2
def test_a_file_larger_than_the_limit_is_never_written(tmp_path):
    model = LinearRegression()
    model.coef_, model.intercept_, model.n_features_in_ = np.zeros(1_600_000), 0.0, 1_600_000  # ~17 MB as base64
    path = tmp_path / "m.json"
    with pytest.raises(ValidationError) as error:
        save_model(model, path)
    assert re.search(rf"the file would be [\d,]+ bytes; the limit is {MAX_FILE_BYTES:,}",
                     _without_path(str(error.value), path))
    assert not path.exists()


@pytest.mark.section2
def test_save_into_a_missing_folder_raises_file_not_found(tmp_path, cancer_model):
    path = tmp_path / "no" / "such" / "model.json"
    with pytest.raises(FileNotFoundError) as error:
        save_model(cancer_model, path)
    message = _without_path(str(error.value), path).replace(str(path.parent), "<folder>")
    assert message == "Cannot save <file>: the folder <folder> does not exist."


# --- crash safety -------------------------------------------------------------------------

@pytest.mark.section2
def test_failed_save_leaves_the_earlier_file_intact(saved, cancer_model):
    before = saved.read_bytes()
    with pytest.raises(ValidationError):
        save_model(cancer_model, saved, version="2.0.0", metadata={"owner": object()})
    assert saved.read_bytes() == before


@pytest.mark.section2
def test_failed_save_leaves_no_temporary_files(saved, cancer_model):
    before = sorted(os.listdir(saved.parent))
    with pytest.raises(ValidationError):
        save_model(cancer_model, saved, metadata={"owner": object()})
    assert sorted(os.listdir(saved.parent)) == before


@pytest.mark.section2
def test_overwriting_replaces_the_file_whole(saved, cancer_model):
    save_model(cancer_model, saved, version="2.0.0")
    assert _read(saved)["version"] == "2.0.0"
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


@pytest.mark.section2
def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text("old\n")
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["notes.json"]


@pytest.mark.section2
def test_atomic_write_writes_utf8(tmp_path):
    path = tmp_path / "notes.json"
    atomic_write_text(path, "naïve café\n")
    assert path.read_bytes() == "naïve café\n".encode("utf-8")


@pytest.mark.section2
def test_atomic_write_that_fails_keeps_the_old_file(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text("old\n")
    with pytest.raises(TypeError):
        atomic_write_text(path, b"bytes are not text")  # fails while writing the temporary file
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["notes.json"]


@pytest.mark.section2
def test_atomic_write_whose_rename_fails_leaves_no_temporary(tmp_path):
    path = tmp_path / "notes.json"
    path.mkdir()  # a folder stands where the file should go: the last step, the rename, fails
    (path / "kept.txt").write_text("old\n")
    with pytest.raises(OSError):
        atomic_write_text(path, "new\n")
    assert (path / "kept.txt").read_text() == "old\n"
    assert os.listdir(tmp_path) == ["notes.json"]


KILLED_WRITER = textwrap.dedent("""
    import os, resource, signal, sys
    import numpy as np
    from deployment import LinearRegression, save_model

    path, fraction = sys.argv[1], float(sys.argv[2])
    rng = np.random.default_rng(0)
    model = LinearRegression(alpha=1.0).fit(rng.normal(size=(5, 20_000)), rng.normal(size=5))
    save_model(model, path, version="1.0.0")
    # From here on, writing past `limit` bytes of any file kills this process with
    # SIGXFSZ, in the middle of the next save: a crash at a chosen byte, no timing involved.
    limit = int(os.path.getsize(path) * fraction)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    save_model(model, path, version="2.0.0")
    print("the second save was not interrupted")
""")


@pytest.mark.section2
@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file size limits")
@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.99])
def test_save_killed_mid_write_leaves_the_earlier_file_whole(tmp_path, fraction):
    path = tmp_path / "m.json"
    writer = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(path), str(fraction)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert writer.returncode == -signal.SIGXFSZ, writer.stdout + writer.stderr
    document = _read(path)  # complete JSON: the first save's file, untouched
    assert document["version"] == "1.0.0"
    _reseal(resealed := json.loads(json.dumps(document)))
    assert resealed["checksum"] == document["checksum"]
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["m.json"]


# =========================================================================================
# Section 3: loading a model
# =========================================================================================

@pytest.mark.section3
@pytest.mark.parametrize("name, model, data", MODELS, ids=[m[0] for m in MODELS])
def test_reloaded_model_gives_bit_identical_predictions(tmp_path, name, model, data):
    path = save_model(model, tmp_path / f"{name}.json")
    reloaded = load_model(path)
    assert type(reloaded) is type(model)
    np.testing.assert_array_equal(_outputs(reloaded, data.X_test), _outputs(model, data.X_test))


@pytest.mark.section3
def test_load_accepts_a_string_path(saved, cancer_model):
    reloaded = load_model(str(saved))
    np.testing.assert_array_equal(reloaded.predict(CANCER.X_test), cancer_model.predict(CANCER.X_test))


@pytest.mark.section3
def test_standard_scaler_round_trips_exactly(tmp_path):
    scaler = StandardScaler().fit(CANCER.X_train)
    reloaded = load_model(save_model(scaler, tmp_path / "scaler.json"))
    np.testing.assert_array_equal(reloaded.transform(CANCER.X_test), scaler.transform(CANCER.X_test))


@pytest.mark.section3
def test_large_model_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 20_000))
    model = LinearRegression(alpha=1.0).fit(X, rng.normal(size=50))
    reloaded = load_model(save_model(model, tmp_path / "large.json"))
    np.testing.assert_array_equal(reloaded.coef_, model.coef_)
    assert reloaded.intercept_ == model.intercept_


@pytest.mark.section3
def test_arrays_keep_their_dtype_and_shape(tmp_path):
    model = MODELS[3][1].named_steps["model"]  # 3 classes: coef (3, 13), integer labels
    reloaded = load_model(save_model(model, tmp_path / "wine.json"))
    assert reloaded.coef_.shape == model.coef_.shape == (3, 13)
    assert reloaded.coef_.dtype == np.float64
    assert reloaded.classes_.dtype == model.classes_.dtype
    np.testing.assert_array_equal(reloaded.classes_, model.classes_)


@pytest.mark.section3
def test_string_class_labels_round_trip(tmp_path):
    labels = np.array(["benign", "malignant"])[CANCER.y_train]
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(CANCER.X_train, labels)
    reloaded = load_model(save_model(model, tmp_path / "labels.json"))
    assert list(reloaded.predict(CANCER.X_test[:20])) == list(model.predict(CANCER.X_test[:20]))


@pytest.mark.section3
@pytest.mark.parametrize("array", [
    np.array([1.5, -2.25e-300], dtype=np.float64),
    np.array([1.5, -2.0, 3.4028235e38], dtype=np.float32),
    np.array([[1, -2], [2**31 - 1, -(2**31)]], dtype=np.int32),
    np.array([2**63 - 1, -(2**63)], dtype=np.int64),
    np.array([True, False]),
    np.array(["benign", "malignant", ""]),
    np.linspace(-1.0, 1.0, 20_000).reshape(100, 200),
    np.arange(20_000, dtype=np.int32),
    np.zeros((0, 3)),
    np.array(2.5),
], ids=["float64", "float32", "int32", "int64", "bool", "str", "base64-float64", "base64-int32", "empty", "0-d"])
def test_decode_array_restores_what_encode_array_wrote(array):
    decoded = decode_array(json.loads(json.dumps(encode_array(array))), "m.json")
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.section3
@pytest.mark.parametrize("shape", [(3, 4), (200, 100)], ids=["inline", "base64"])
def test_fortran_ordered_matrix_round_trips_in_fortran_order(shape):
    matrix = np.asfortranarray(np.arange(np.prod(shape), dtype=np.float64).reshape(shape) / 7)
    decoded = decode_array(json.loads(json.dumps(encode_array(matrix))), "m.json")
    assert decoded.flags.f_contiguous and not decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, matrix)


@pytest.mark.section3
def test_c_ordered_matrix_round_trips_in_c_order():
    matrix = np.arange(12, dtype=np.float64).reshape(3, 4)
    assert decode_array(encode_array(matrix), "m.json").flags.c_contiguous


@pytest.mark.section3
def test_reloaded_scikit_learn_coefficients_keep_their_memory_order(tmp_path):
    logistic = SKLEARN_MULTICLASS[-1]
    assert logistic.coef_.flags.f_contiguous and not logistic.coef_.flags.c_contiguous  # as scikit-learn fits it
    reloaded = load_model(save_model(SKLEARN_MULTICLASS, tmp_path / "wine.json"))[-1]
    assert reloaded.coef_.flags.f_contiguous
    np.testing.assert_array_equal(reloaded.coef_, logistic.coef_)


@pytest.mark.section3
def test_decode_array_accepts_the_dimension_limit():
    assert decode_array({"dtype": "float64", "shape": [1] * MAX_ARRAY_DIMENSIONS, "data": [0.5]},
                        "m.json").shape == (1,) * MAX_ARRAY_DIMENSIONS


@pytest.mark.section3
def test_load_serialized_returns_the_envelope_without_building(saved):
    envelope = load_serialized(saved)
    assert isinstance(envelope, SerializedModel)
    assert envelope.type == "deployment.Pipeline"
    assert envelope.version == "1.2.3"
    assert envelope.format_version == 1
    assert envelope.metadata["accuracy"] == 0.96
    assert envelope.checksum == _read(saved)["checksum"]
    assert envelope.signature is None
    assert envelope.parameters == _read(saved)["parameters"]


@pytest.mark.section3
def test_build_model_rebuilds_from_a_checked_envelope(saved, cancer_model):
    rebuilt = build_model(load_serialized(saved), str(saved))
    np.testing.assert_array_equal(rebuilt.predict_proba(CANCER.X_test), cancer_model.predict_proba(CANCER.X_test))


@pytest.mark.section3
def test_metadata_at_the_depth_limit_loads(tmp_path, cancer_model):
    deepest = []
    for _ in range(MAX_JSON_DEPTH - 3):
        deepest = [deepest]
    path = save_model(cancer_model, tmp_path / "deep.json", metadata={"extra": deepest})
    assert load_serialized(path).metadata["extra"] == deepest


@pytest.mark.section3
def test_longest_version_loads(tmp_path, cancer_model):
    longest = "1.0.0-" + "a" * (MAX_VERSION_LENGTH - 6)
    assert load_serialized(save_model(cancer_model, tmp_path / "m.json", version=longest)).version == longest


@pytest.mark.section3
def test_a_file_of_exactly_the_size_limit_loads(saved):
    text = saved.read_text()
    saved.write_text(text + " " * (MAX_FILE_BYTES - len(text)))
    assert saved.stat().st_size == MAX_FILE_BYTES
    assert load_serialized(saved).version == "1.2.3"


# --- refusals at load time: every one names the file ------------------------------------

@pytest.mark.section3
def test_missing_file_raises_file_not_found_naming_it(tmp_path):
    path = tmp_path / "m.json"
    with pytest.raises(FileNotFoundError) as error:
        load_model(path)
    assert _without_path(str(error.value), path) == "Model file <file> does not exist."


@pytest.mark.section3
def test_a_folder_is_refused(tmp_path):
    folder = tmp_path / "m.json"
    folder.mkdir()
    _assert_refused(folder, "is not a file")


@pytest.mark.section3
@pytest.mark.parametrize("content", ["", " \n\t\n"], ids=["nothing", "white-space"])
def test_empty_file_is_refused(tmp_path, content):
    path = tmp_path / "m.json"
    path.write_text(content)
    _assert_refused(path, "the file is empty")


@pytest.mark.section3
def test_bytes_that_are_not_utf8_are_refused(tmp_path):
    path = tmp_path / "m.json"
    path.write_bytes(b'{"type": "\xff\xfe"}')
    _assert_refused(path, "not UTF-8 text")


@pytest.mark.section3
def test_text_that_is_not_json_is_refused_naming_line_and_column(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{\n  "type": oops\n}\n')
    _assert_refused(path, r"not valid JSON at line 2, column 11")


@pytest.mark.section3
def test_truncated_file_is_refused(saved):
    text = saved.read_text()
    saved.write_text(text[: len(text) // 2])
    _assert_refused(saved, "the file is truncated")


@pytest.mark.section3
def test_truncated_file_with_non_ascii_metadata_is_refused_as_truncated(tmp_path, cancer_model):
    path = save_model(cancer_model, tmp_path / "m.json", metadata={"author": "Zoë Ødegård " * 50})
    text = path.read_text().replace("\\u00eb", "ë").replace("\\u00d8", "Ø").replace("\\u00e5", "å")
    path.write_text(text[: len(text) - 40], encoding="utf-8")
    _assert_refused(path, "the file is truncated")


@pytest.mark.section3
def test_json_that_is_not_an_object_is_refused(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("[1, 2, 3]")
    _assert_refused(path, "must hold a JSON object, got list")


@pytest.mark.section3
def test_unknown_model_type_is_refused(saved):
    _rewrite(saved, lambda d: d.update(type="sklearn.DecisionTreeClassifier"))
    _assert_refused(saved, "unknown model type 'sklearn.DecisionTreeClassifier'")


@pytest.mark.section3
def test_loading_never_imports_a_module_the_file_names(saved, tmp_path, monkeypatch):
    trap = tmp_path / "trap_module.py"
    flag = tmp_path / "imported"
    trap.write_text(f"open({str(flag)!r}, 'w').close()\nclass Model: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _rewrite(saved, lambda d: d.update(type="trap_module.Model"))
    _assert_refused(saved, "unknown model type 'trap_module.Model'")
    assert not flag.exists()
    assert "trap_module" not in sys.modules


@pytest.mark.section3
def test_newer_format_version_is_refused(saved):
    _rewrite(saved, lambda d: d.update(format_version=99))
    _assert_refused(saved, r"format_version 99 is newer than this code reads \(1\)")


@pytest.mark.section3
@pytest.mark.parametrize("value", [None, "1", 0, 1.5, True])
def test_ill_typed_format_version_is_refused(saved, value):
    _rewrite(saved, lambda d: d.update(format_version=value))
    _assert_refused(saved, "format_version must be a positive integer")


@pytest.mark.section3
@pytest.mark.parametrize("field", ["type", "version", "parameters", "metadata", "checksum"])
def test_missing_field_is_refused(saved, field):
    _rewrite(saved, lambda d: d.pop(field))
    _assert_refused(saved, f"the field '{field}' is missing")


@pytest.mark.section3
def test_missing_format_version_is_refused(saved):
    _rewrite(saved, lambda d: d.pop("format_version"))
    _assert_refused(saved, "format_version must be a positive integer, got None")


@pytest.mark.section3
@pytest.mark.parametrize("field, value, kind", [
    ("parameters", [1, 2, 3], "dict"), ("metadata", "none", "dict"), ("type", 7, "str"),
    ("version", 1.0, "str"), ("checksum", None, "str"),
])
def test_ill_typed_field_is_refused(saved, field, value, kind):
    _rewrite(saved, lambda d: d.update({field: value}))
    _assert_refused(saved, f"the field '{field}' must be a {kind}")


@pytest.mark.section3
def test_missing_trained_at_is_refused(saved):
    _rewrite(saved, lambda d: d["metadata"].pop("trained_at"))
    _assert_refused(saved, "metadata.trained_at must be an ISO 8601 timestamp string")


@pytest.mark.section3
def test_bad_version_in_file_is_refused(saved):
    _rewrite(saved, lambda d: d.update(version="one"))
    _assert_refused(saved, "'one' is not a semantic version")


@pytest.mark.section3
@pytest.mark.parametrize("length", [300, 5_000])
def test_version_longer_than_the_limit_in_a_file_is_refused(saved, length):
    _rewrite(saved, lambda d: d.update(version="1" * (length - 4) + ".0.0"))
    _assert_refused(saved, f"{length} characters long; the limit is {MAX_VERSION_LENGTH}")


@pytest.mark.section3
def test_tampered_parameters_fail_the_checksum(saved):
    _rewrite(saved, lambda d: _coef(d)["data"].__setitem__(0, _coef(d)["data"][0] + 1.0))
    _assert_refused(saved, "the checksum does not match the parameters")


@pytest.mark.section3
def test_shapes_that_do_not_fit_are_refused(saved):
    _forge_coef(saved, shape=[1, 29], data=_coef(_read(saved))["data"][:29])
    _assert_refused(saved, "pipeline step 0 outputs 30 features but step 1 takes 29")


@pytest.mark.section3
def test_data_that_does_not_fill_the_shape_is_refused(saved):
    _forge_coef(saved, data=_coef(_read(saved))["data"][:10])
    _assert_refused(saved, r"array data must be a list of 30 values for shape \[1, 30\]")


@pytest.mark.section3
def test_an_array_refusal_names_where_the_array_is(saved):
    _forge_coef(saved, dtype="object")
    _assert_refused(saved, r"^<file> \(parameters\.steps\[1\]\.state\.coef\): array dtype 'object' is not one of")


@pytest.mark.section3
def test_values_of_the_wrong_kind_are_refused(saved):
    _forge_coef(saved, data=["0.5"] * 30)
    _assert_refused(saved, "array data holds values that are not float64")


@pytest.mark.section3
def test_booleans_are_not_numbers(saved):
    _forge_coef(saved, data=[True] * 30)
    _assert_refused(saved, "array data holds values that are not float64")


@pytest.mark.section3
def test_nan_in_parameters_is_refused(saved):
    text = saved.read_text()
    first = _coef(_read(saved))["data"][0]
    saved.write_text(text.replace(repr(first), "NaN", 1))
    _assert_refused(saved, "the non-finite number NaN is not allowed in a model file")


@pytest.mark.section3
@pytest.mark.parametrize("number", ["1e309", "-2E+400"])
def test_a_number_too_large_for_a_float_is_refused_not_read_as_infinity(saved, number):
    text = saved.read_text()
    first = _coef(_read(saved))["data"][0]
    saved.write_text(text.replace(repr(first), number, 1))
    _assert_refused(saved, f"the number {re.escape(number)} is too large for a float64")


@pytest.mark.section3
def test_non_finite_float_bytes_are_refused(saved):
    values = np.array(_coef(_read(saved))["data"])
    values[0] = np.nan
    _forge_coef(saved, data=None, base64=base64.b64encode(values.astype("<f8").tobytes()).decode())
    _assert_refused(saved, "array holds NaN or infinite numbers")


@pytest.mark.section3
def test_bytes_that_are_not_base64_are_refused(saved):
    _forge_coef(saved, data=None, base64="not base64!")
    _assert_refused(saved, "array bytes are not valid base64")


@pytest.mark.section3
def test_bytes_that_do_not_fill_the_shape_are_refused(saved):
    short = np.zeros(29).astype("<f8").tobytes()
    _forge_coef(saved, data=None, base64=base64.b64encode(short).decode())
    _assert_refused(saved, r"array bytes do not fit dtype float64 and shape \[1, 30\]")


@pytest.mark.section3
def test_wrong_dtype_is_refused(saved):
    _forge_coef(saved, dtype="object")
    _assert_refused(saved, "array dtype 'object' is not one of")


@pytest.mark.section3
@pytest.mark.parametrize("shape", ["30", [1, -30], [1, 30.0], [True, 30]], ids=["text", "negative", "float", "bool"])
def test_shape_that_is_not_a_list_of_sizes_is_refused(saved, shape):
    _forge_coef(saved, shape=shape)
    _assert_refused(saved, "array shape (must be a list of sizes|.* is not a list of sizes)")


@pytest.mark.section3
def test_unknown_memory_order_is_refused(saved):
    _forge_coef(saved, order="Z")
    _assert_refused(saved, "array order 'Z' is not 'C' or 'F'")


# --- limits: no file can make the loader crash or allocate gigabytes ----------------------

@pytest.mark.section3
def test_a_file_larger_than_the_limit_is_refused_naming_the_limit(saved):
    text = saved.read_text()
    saved.write_text(text + " " * (MAX_FILE_BYTES + 1 - len(text)))  # valid JSON, one byte too large
    _assert_refused(saved, f"the file is {MAX_FILE_BYTES + 1:,} bytes; the limit is {MAX_FILE_BYTES:,}")


@pytest.mark.section3
def test_metadata_nested_100000_deep_is_refused_not_a_recursion_error(saved):
    _with_metadata_text(saved, _nested(100_000))
    _assert_refused(saved, f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")


@pytest.mark.section3
def test_metadata_nested_just_past_the_limit_is_refused(saved):
    _with_metadata_text(saved, _nested(MAX_JSON_DEPTH - 1))  # envelope, metadata, then 31 levels: 33
    _assert_refused(saved, f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")


@pytest.mark.section3
@pytest.mark.parametrize("shape", [[4294967296, 4294967296], [2**62, 2**62, 2**62], [0, 2**62], [MAX_ARRAY_ELEMENTS + 1]],
                         ids=["wraps-int64-to-0", "huge", "empty-but-huge", "one-over"])
def test_shape_with_too_many_elements_is_refused_before_anything_is_allocated(saved, shape):
    _forge_coef(saved, shape=shape, data=[])
    _assert_refused(saved, f"array shape .* holds more than {MAX_ARRAY_ELEMENTS:,} elements")


@pytest.mark.section3
@pytest.mark.parametrize("dimensions", [MAX_ARRAY_DIMENSIONS + 1, 100])
def test_shape_with_too_many_dimensions_is_refused(saved, dimensions):
    _forge_coef(saved, shape=[1] * dimensions, data=[0.5])
    _assert_refused(saved, f"array shape has {dimensions} dimensions; the limit is {MAX_ARRAY_DIMENSIONS}")


@pytest.mark.section3
def test_a_class_label_longer_than_the_limit_is_refused(saved):
    def forge(document):
        classes = document["parameters"]["steps"][1]["state"]["classes"]
        classes.update(dtype="str", data=["x" * (MAX_STRING_LENGTH + 1), "y"])
        _reseal(document)
    _rewrite(saved, forge)
    _assert_refused(saved, f"array data holds a string longer than {MAX_STRING_LENGTH:,} characters")


@pytest.mark.section3
@pytest.mark.parametrize("dtype, value", [("int64", 2**63), ("int32", 2**31), ("int64", -(10**30))])
def test_integers_too_large_for_their_dtype_are_refused(saved, dtype, value):
    def forge(document):
        document["parameters"]["steps"][1]["state"]["classes"].update(dtype=dtype, data=[0, value])
        _reseal(document)
    _rewrite(saved, forge)
    _assert_refused(saved, f"array data holds numbers too large for {dtype}")


# =========================================================================================
# Section 7: signed model files
# =========================================================================================

@pytest.mark.section7
def test_signature_is_the_hmac_of_the_canonical_envelope_without_it(signed):
    document = _read(signed)
    unsigned = {key: value for key, value in document.items() if key != "signature"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode("utf-8")
    assert document["signature"] == hmac.new(KEY, canonical, hashlib.sha256).hexdigest()


@pytest.mark.section7
def test_envelope_signature_depends_on_the_key_and_uses_a_str_key_as_utf8():
    envelope = {"format_version": 1, "checksum": "ab", "signature": "ignored"}
    canonical = b'{"checksum":"ab","format_version":1}'
    assert envelope_signature(envelope, "clé") == hmac.new("clé".encode(), canonical, hashlib.sha256).hexdigest()
    assert envelope_signature(envelope, b"other") != envelope_signature(envelope, "clé")


@pytest.mark.section7
def test_signed_file_loads_with_its_key(signed, cancer_model):
    reloaded = load_model(signed, signing_key=KEY)
    np.testing.assert_array_equal(reloaded.predict_proba(CANCER.X_test), cancer_model.predict_proba(CANCER.X_test))
    assert load_serialized(signed, signing_key=KEY.decode()).signature == _read(signed)["signature"]


@pytest.mark.section7
def test_signed_file_loads_without_a_key(signed):
    assert load_serialized(signed).signature == _read(signed)["signature"]


@pytest.mark.section7
def test_forged_file_with_a_recomputed_checksum_passes_without_a_key_and_fails_with_one(signed, cancer_model):
    def forge(document):
        _coef(document)["data"] = [-value for value in _coef(document)["data"]]
        _reseal(document)
    _rewrite(signed, forge)
    forged = load_model(signed)  # the checksum cannot tell: it was recomputed
    assert (forged.predict(CANCER.X_test) != cancer_model.predict(CANCER.X_test)).any()
    _assert_refused(signed, "the signature does not match", signing_key=KEY)


@pytest.mark.section7
@pytest.mark.parametrize("change", [
    lambda d: d["metadata"].update(accuracy=0.999),
    lambda d: d.update(version="9.9.9"),
    lambda d: d["metadata"].update(trained_at="2020-01-01T00:00:00Z"),
    lambda d: d.update(type="sklearn.Pipeline"),
], ids=["accuracy", "version", "trained_at", "type"])
def test_signature_covers_more_than_the_parameters(signed, change):
    _rewrite(signed, change)
    load_serialized(signed)  # the checksum covers only the parameters: it still matches
    _assert_refused(signed, "the signature does not match", signing_key=KEY)


@pytest.mark.section7
def test_unsigned_file_is_refused_when_a_key_is_given(saved):
    _assert_refused(saved, "the file is not signed", signing_key=KEY)


@pytest.mark.section7
def test_file_signed_with_another_key_is_refused(tmp_path, cancer_model):
    path = save_model(cancer_model, tmp_path / "m.json", signing_key=b"another key")
    _assert_refused(path, "the signature does not match", signing_key=KEY)


@pytest.mark.section7
def test_signature_that_is_not_a_string_is_refused(signed):
    _rewrite(signed, lambda d: d.update(signature=12345))
    _assert_refused(signed, "the field 'signature' must be a str, got int")


@pytest.mark.section7
def test_signature_that_is_not_ascii_is_refused_cleanly(signed):
    _rewrite(signed, lambda d: d.update(signature="é" * 64))
    _assert_refused(signed, "the signature does not match", signing_key=KEY)


@pytest.mark.section7
def test_check_signature_accepts_what_envelope_signature_signed():
    envelope = {"format_version": 1, "type": "t", "checksum": "ab", "metadata": {"a": [1, 2]}}
    envelope["signature"] = envelope_signature(envelope, KEY)
    check_signature(envelope, KEY, "m.json")
    with pytest.raises(ModelFormatError, match="^m.json: the signature does not match"):
        check_signature(dict(envelope, checksum="ac"), KEY, "m.json")


@pytest.mark.section7
@pytest.mark.parametrize("key", [b"", "", 42, None], ids=["empty-bytes", "empty-str", "int", "none"])
def test_a_bad_signing_key_is_refused(key):
    with pytest.raises(ValidationError, match="A signing key must be a non-empty bytes or str secret"):
        envelope_signature({"format_version": 1}, key)


@pytest.mark.section7
@pytest.mark.parametrize("key", [b"", ""], ids=["bytes", "str"])
def test_saving_with_an_empty_key_is_refused_before_anything_is_written(saved, cancer_model, key):
    before = saved.read_bytes()
    with pytest.raises(ValidationError, match="non-empty"):
        save_model(cancer_model, saved, version="2.0.0", signing_key=key)
    assert saved.read_bytes() == before
    with pytest.raises(ValidationError, match="non-empty"):
        save_model(cancer_model, saved.parent / "new.json", signing_key=key)
    assert not (saved.parent / "new.json").exists()


@pytest.mark.section7
def test_a_bad_key_is_refused_before_the_file_is_looked_at(saved):
    with pytest.raises(ValidationError, match="A signing key must be a non-empty bytes or str secret"):
        check_signature({"checksum": "ab"}, b"", "m.json")  # unsigned, but the key is the first problem
    with pytest.raises(ValidationError, match="non-empty"):
        load_model(saved, signing_key="")


@pytest.mark.section7
def test_signed_save_of_metadata_json_cannot_hold_is_refused(tmp_path, cancer_model):
    path = tmp_path / "m.json"
    with pytest.raises(ValidationError) as error:
        save_model(cancer_model, path, metadata={"owner": object()}, signing_key=KEY)
    assert "metadata" in _without_path(str(error.value), path)
    assert not path.exists()
