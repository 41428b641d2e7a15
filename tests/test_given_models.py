"""The given code: models agree with scikit-learn, data splits are reproducible, versions sort.

Not graded (the student does not write this code), but a broken model
would make every part's grade meaningless, so `make test` checks it.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import linear_model as sk_linear
from sklearn import preprocessing as sk_preprocessing

from deployment import (
    DeploymentError,
    LinearRegression,
    ModelFormatError,
    ModelNotFoundError,
    RateLimitError,
    LogisticRegression,
    Pipeline,
    StandardScaler,
    ValidationError,
    load_dataset,
    validate_version,
    version_key,
)
from deployment.model_codecs import CODECS, codec_for_type
from deployment.versions import MAX_VERSION_LENGTH

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def diabetes():
    return load_dataset("diabetes", seed=0)


def _scaled(name):
    data = load_dataset(name, seed=0)
    scaler = sk_preprocessing.StandardScaler().fit(data.X_train)
    return data, scaler.transform(data.X_train), scaler.transform(data.X_test)


def test_linear_regression_agrees_with_scikit_learn(diabetes):
    ours = LinearRegression().fit(diabetes.X_train, diabetes.y_train)
    theirs = sk_linear.LinearRegression().fit(diabetes.X_train, diabetes.y_train)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=TOLERANCE * np.abs(theirs.coef_).max())
    np.testing.assert_allclose(ours.predict(diabetes.X_test), theirs.predict(diabetes.X_test), rtol=TOLERANCE)


@pytest.mark.parametrize("alpha", [0.1, 1.0, 10.0])
def test_ridge_agrees_with_scikit_learn(diabetes, alpha):
    ours = LinearRegression(alpha=alpha).fit(diabetes.X_train, diabetes.y_train)
    theirs = sk_linear.Ridge(alpha=alpha).fit(diabetes.X_train, diabetes.y_train)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=TOLERANCE)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=TOLERANCE)


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "iris", "digits"])
def test_logistic_regression_agrees_with_scikit_learn(name):
    data, X_train, X_test = _scaled(name)
    ours = LogisticRegression(C=1.0).fit(X_train, data.y_train)
    theirs = sk_linear.LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    theirs.fit(X_train, data.y_train)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ours.predict_proba(X_test), theirs.predict_proba(X_test), rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(ours.predict(X_test), theirs.predict(X_test))


def test_standard_scaler_agrees_with_scikit_learn():
    data = load_dataset("digits", seed=0)  # has constant pixels: their scale stays 1
    ours, theirs = StandardScaler().fit(data.X_train), sk_preprocessing.StandardScaler().fit(data.X_train)
    np.testing.assert_allclose(ours.scale_, theirs.scale_, rtol=TOLERANCE)
    np.testing.assert_allclose(ours.transform(data.X_test), theirs.transform(data.X_test), atol=TOLERANCE)


def test_pipeline_chains_its_steps():
    data = load_dataset("breast_cancer", seed=0)
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    assert pipeline.fit(data.X_train, data.y_train) is pipeline
    assert pipeline.n_features_in_ == 30
    assert pipeline.score(data.X_test, data.y_test) > 0.9
    np.testing.assert_array_equal(pipeline.classes_, [0, 1])


def test_fit_returns_the_estimator(diabetes):
    model = LinearRegression()
    assert model.fit(diabetes.X_train, diabetes.y_train) is model


def test_unfitted_model_refuses_to_predict():
    with pytest.raises(ValidationError, match="not fitted"):
        LogisticRegression().predict([[1.0, 2.0]])


def test_wrong_width_is_refused(diabetes):
    model = LinearRegression().fit(diabetes.X_train, diabetes.y_train)
    with pytest.raises(ValidationError, match="10"):
        model.predict(np.zeros((2, 3)))


def test_repr_shows_the_hyperparameters():
    assert repr(LogisticRegression(C=0.5)) == "LogisticRegression(C=0.5, max_iter=100, tol=1e-10)"


def test_dataset_split_is_reproducible_and_stratified():
    first, second = load_dataset("breast_cancer", seed=3), load_dataset("breast_cancer", seed=3)
    np.testing.assert_array_equal(first.X_train, second.X_train)
    assert first.X_train.shape == (426, 30) and first.X_test.shape == (143, 30)
    assert abs(first.y_train.mean() - first.y_test.mean()) < 0.01
    assert not np.array_equal(first.X_train, load_dataset("breast_cancer", seed=4).X_train)


def test_unknown_dataset_is_refused():
    with pytest.raises(ValidationError, match="housing"):
        load_dataset("housing")


def test_versions_sort_by_semantic_precedence():
    versions = ["1.10.0", "1.9.0", "2.0.0-rc.1", "2.0.0", "2.0.0-alpha", "2.0.0-alpha.1", "0.1.0", "2.0.0-rc.10"]
    assert sorted(versions, key=version_key) == [
        "0.1.0", "1.9.0", "1.10.0", "2.0.0-alpha", "2.0.0-alpha.1", "2.0.0-rc.1", "2.0.0-rc.10", "2.0.0",
    ]


def test_errors_are_deployment_errors_and_standard_ones():
    assert issubclass(ModelFormatError, ValidationError) and issubclass(ModelFormatError, ValueError)
    assert issubclass(ModelNotFoundError, KeyError) and issubclass(ModelNotFoundError, DeploymentError)
    assert str(ModelNotFoundError("no model 'x'")) == "no model 'x'"
    assert RateLimitError("slow down", retry_after_s=1.5).retry_after_s == 1.5


def test_a_version_of_the_length_limit_is_accepted_and_a_longer_one_refused():
    longest = "1.0.0-" + "a" * (MAX_VERSION_LENGTH - 6)
    assert validate_version(longest) == longest
    with pytest.raises(ValidationError, match=f"{MAX_VERSION_LENGTH + 1} characters long; the limit is {MAX_VERSION_LENGTH}"):
        validate_version(longest + "a")


def test_a_5000_digit_version_is_a_validation_error_even_when_sorting():
    huge = "1" * 5_000 + ".0.0"
    with pytest.raises(ValidationError, match="5004 characters long"):
        version_key(huge)


# --- the codecs refuse states that do not fit together, whatever a forged file holds ------

def _logistic_state(**changes):
    state = {"C": 1.0, "classes": np.array([0, 1]), "coef": np.ones((1, 3)), "intercept": np.zeros(1)}
    state.update(changes)
    return state


def _pipeline_state(steps):
    scaler = {"with_mean": True, "with_std": True, "mean": np.zeros(3), "var": np.ones(3), "scale": np.ones(3)}
    states = {"deployment.StandardScaler": scaler, "deployment.LogisticRegression": _logistic_state()}
    return {"steps": [{"name": name, "type": kind, "state": states[kind]} for name, kind in steps]}


def test_codecs_rebuild_a_state_they_made():
    model = CODECS["deployment.LogisticRegression"].build(_logistic_state(), "m.json")
    assert model.predict(np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])).tolist() == [1, 0]


@pytest.mark.parametrize("value", [10**400, -(10**5000), float("inf"), True, "1.0", None],
                         ids=["400-digits", "5000-digits", "inf", "bool", "str", "none"])
def test_a_number_that_is_not_a_finite_float_is_refused_with_a_short_message(value):
    with pytest.raises(ModelFormatError, match=r"^m\.json: parameters\.C must be a finite number") as error:
        CODECS["deployment.LogisticRegression"].build(_logistic_state(C=value), "m.json")
    assert len(str(error.value)) < 120


def test_coefficients_that_do_not_fit_the_classes_are_refused():
    with pytest.raises(ModelFormatError, match="2 classes need coef with 1 rows and 1 intercepts"):
        CODECS["deployment.LogisticRegression"].build(_logistic_state(coef=np.ones((2, 3))), "m.json")


def test_a_pipeline_step_name_used_twice_is_refused():
    state = _pipeline_state([("same", "deployment.StandardScaler"), ("same", "deployment.LogisticRegression")])
    with pytest.raises(ModelFormatError, match=r"\(pipeline step 1\): the step name 'same' is used twice"):
        CODECS["deployment.Pipeline"].build(state, "m.json")


def test_a_pipeline_step_that_cannot_transform_is_refused_before_the_last():
    state = _pipeline_state([("model", "deployment.LogisticRegression"), ("scale", "deployment.StandardScaler")])
    with pytest.raises(ModelFormatError, match="step 0 is a deployment.LogisticRegression, which cannot transform"):
        CODECS["deployment.Pipeline"].build(state, "m.json")


def test_a_pipeline_in_a_pipeline_is_refused():
    state = _pipeline_state([("scale", "deployment.StandardScaler")])
    state["steps"].insert(0, {"name": "inner", "type": "deployment.Pipeline", "state": _pipeline_state([])})
    with pytest.raises(ModelFormatError, match="a Pipeline cannot be nested inside a Pipeline"):
        CODECS["deployment.Pipeline"].build(state, "m.json")


def test_an_unknown_type_is_refused_with_a_short_message():
    with pytest.raises(ModelFormatError, match=r"unknown model type 'x+\.\.\.; supported types are") as error:
        codec_for_type("x" * 10_000, where="m.json")
    assert len(str(error.value)) < 400


def test_scikit_learn_pipeline_exported_to_onnx_predicts_the_same():
    """Notebook 01 compares ONNX with JSON: the pinned skl2onnx and onnxruntime must agree with scikit-learn."""
    import onnxruntime
    import skl2onnx
    from sklearn.pipeline import make_pipeline

    data = load_dataset("breast_cancer", seed=0)
    model = make_pipeline(sk_preprocessing.StandardScaler(), sk_linear.LogisticRegression(max_iter=1000))
    model.fit(data.X_train, data.y_train)
    exported = skl2onnx.to_onnx(model, data.X_train[:1].astype(np.float32), options={"zipmap": False})
    session = onnxruntime.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {session.get_inputs()[0].name: data.X_test.astype(np.float32)})
    np.testing.assert_array_equal(labels, model.predict(data.X_test))
    np.testing.assert_allclose(probabilities, model.predict_proba(data.X_test), rtol=0, atol=1e-6)
