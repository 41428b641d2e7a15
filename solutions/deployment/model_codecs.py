"""The allow-list of model types that can be saved, and how each is taken apart and rebuilt.

A saved file names its model's type as a plain string such as
``"deployment.LogisticRegression"``. Loading looks that string up in
``CODECS`` and nowhere else: a file can never make the loader import a
module or call a function it names, which is what makes a JSON model file
safe to open when a pickle is not.

Each codec turns a fitted model into a *state* (a dict of numpy arrays,
numbers, booleans and, for a pipeline, nested states) and back. Part 1's
``save_model`` and ``load_model`` turn states into JSON and JSON into
states; the codecs check that a state fits together before they build
anything, and refuse what does not with a ModelFormatError whose message
starts with the file (``where``) and names the parameter:

* ``parameters lack the field 'coef'``;
* ``parameters.coef must be an array``, ``parameters.coef must be 2-D, got shape (30,)``,
  ``parameters.coef must hold floats``, ``parameters.coef holds NaN or infinite numbers``;
* ``parameters.C must be a finite number``, ``parameters.fit_intercept must be true or false``;
* ``parameters.scale has shape (29,), which does not fit 30 features``,
  ``parameters.scale must be positive``;
* ``3 classes need coef with 3 rows and 3 intercepts``;
* for a pipeline (``where`` then says which step, ``(pipeline step 1)``):
  ``parameters.steps must be a non-empty list``, ``the step name 'scale' is used twice``,
  ``a Pipeline cannot be nested inside a Pipeline``,
  ``step 0 is a ... LogisticRegression, which cannot transform data for the next step``,
  ``pipeline step 0 outputs 30 features but step 1 takes 29``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from sklearn import linear_model as sk_linear
from sklearn import pipeline as sk_pipeline
from sklearn import preprocessing as sk_preprocessing

from . import models
from .errors import ModelFormatError, ValidationError

__all__ = ["CODECS", "ModelCodec", "codec_for_model", "codec_for_type"]


@dataclass(frozen=True)
class ModelCodec:
    """How one allowed model type becomes a state and back."""

    type_name: str
    model_class: type
    get_state: Callable[[Any], dict[str, Any]]
    build: Callable[[dict[str, Any], str], Any]  # (state, where) -> model


# --- checks on a state read from a file ------------------------------------------------

def _field(state: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(state, dict) or key not in state:
        raise ModelFormatError(f"{where}: parameters lack the field {key!r}.")
    return state[key]


def _array(state: dict[str, Any], key: str, where: str, *, ndim: int, kind: str = "f") -> np.ndarray:
    value = _field(state, key, where)
    if not isinstance(value, np.ndarray):
        raise ModelFormatError(f"{where}: parameters.{key} must be an array, got {type(value).__name__}.")
    if value.ndim != ndim:
        raise ModelFormatError(f"{where}: parameters.{key} must be {ndim}-D, got shape {value.shape}.")
    if kind == "f":
        if value.dtype.kind != "f":
            raise ModelFormatError(f"{where}: parameters.{key} must hold floats, got {value.dtype}.")
        if not np.isfinite(value).all():
            raise ModelFormatError(f"{where}: parameters.{key} holds NaN or infinite numbers.")
    return value


def _number(state: dict[str, Any], key: str, where: str) -> float:
    value = _field(state, key, where)
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an int too large for a float, such as 10**400
        number = math.nan
    if not math.isfinite(number):
        raise ModelFormatError(f"{where}: parameters.{key} must be a finite number, got {_short(value)}.")
    return number


def _short(value: Any) -> str:
    """A value's repr for a message, cut to 40 characters (a file may hold a 4,000-digit number)."""
    if isinstance(value, int) and value.bit_length() > 128:  # repr() of a huge int is slow, or refused
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1:,} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _flag(state: dict[str, Any], key: str, where: str) -> bool:
    value = _field(state, key, where)
    if not isinstance(value, bool):
        raise ModelFormatError(f"{where}: parameters.{key} must be true or false, got {_short(value)}.")
    return value


def _same_length(where: str, n: int, **arrays: np.ndarray) -> None:
    for key, array in arrays.items():
        if array.shape[-1] != n:
            raise ModelFormatError(
                f"{where}: parameters.{key} has shape {array.shape}, which does not fit {n} features."
            )


def _require_fitted(model: Any, *attributes: str) -> None:
    if not all(hasattr(model, a) for a in attributes):
        raise ValidationError(f"Cannot save an unfitted {type(model).__name__}; call fit(X, y) first.")


# --- linear regression (ours, scikit-learn's LinearRegression and Ridge) -------------------

def _linear_state(model: Any) -> dict[str, Any]:
    _require_fitted(model, "coef_", "intercept_")
    coef = np.asarray(model.coef_, dtype=np.float64)
    if coef.ndim != 1:
        raise ValidationError(f"Cannot save {type(model).__name__} with a {coef.ndim}-D coef_; one target only.")
    return {
        "alpha": float(getattr(model, "alpha", 0.0)),
        "fit_intercept": bool(model.fit_intercept),
        "coef": coef,
        "intercept": float(model.intercept_),
    }


def _linear_builder(make: Callable[[float, bool], Any]) -> Callable[[dict[str, Any], str], Any]:
    def build(state: dict[str, Any], where: str) -> Any:
        coef = _array(state, "coef", where, ndim=1)
        model = make(_number(state, "alpha", where), _flag(state, "fit_intercept", where))
        model.coef_ = coef
        model.intercept_ = _number(state, "intercept", where)
        model.n_features_in_ = coef.shape[0]
        return model
    return build


# --- logistic regression ----------------------------------------------------------------

def _logistic_state(model: Any) -> dict[str, Any]:
    _require_fitted(model, "coef_", "intercept_", "classes_")
    return {
        "C": float(model.C),
        "classes": np.asarray(model.classes_),
        "coef": np.asarray(model.coef_, dtype=np.float64),
        "intercept": np.asarray(model.intercept_, dtype=np.float64),
    }


def _logistic_builder(make: Callable[[float], Any]) -> Callable[[dict[str, Any], str], Any]:
    def build(state: dict[str, Any], where: str) -> Any:
        classes = _array(state, "classes", where, ndim=1, kind="any")
        coef = _array(state, "coef", where, ndim=2)
        intercept = _array(state, "intercept", where, ndim=1)
        rows = 1 if len(classes) == 2 else len(classes)
        if len(classes) < 2 or coef.shape[0] != rows or intercept.shape[0] != rows:
            raise ModelFormatError(
                f"{where}: {len(classes)} classes need coef with {rows} rows and {rows} intercepts, "
                f"got coef {coef.shape} and intercept {intercept.shape}."
            )
        model = make(_number(state, "C", where))
        model.classes_, model.coef_, model.intercept_ = classes, coef, intercept
        model.n_features_in_ = coef.shape[1]
        return model
    return build


# --- standard scaler ----------------------------------------------------------------------

def _scaler_state(model: Any) -> dict[str, Any]:
    _require_fitted(model, "n_features_in_")
    state: dict[str, Any] = {"with_mean": bool(model.with_mean), "with_std": bool(model.with_std)}
    for key in ("mean", "var", "scale"):
        value = getattr(model, key + "_", None)
        state[key] = None if value is None else np.asarray(value, dtype=np.float64)
    return state


def _scaler_builder(make: Callable[[bool, bool], Any]) -> Callable[[dict[str, Any], str], Any]:
    def build(state: dict[str, Any], where: str) -> Any:
        with_mean, with_std = _flag(state, "with_mean", where), _flag(state, "with_std", where)
        mean = _array(state, "mean", where, ndim=1) if with_mean else None
        var = _array(state, "var", where, ndim=1) if with_std else None
        scale = _array(state, "scale", where, ndim=1) if with_std else None
        present = {k: v for k, v in {"mean": mean, "var": var, "scale": scale}.items() if v is not None}
        if not present:
            raise ModelFormatError(f"{where}: a scaler with neither mean nor std has nothing to learn.")
        n = next(iter(present.values())).shape[0]
        _same_length(where, n, **present)
        if scale is not None and (scale <= 0).any():
            raise ModelFormatError(f"{where}: parameters.scale must be positive.")
        model = make(with_mean, with_std)
        model.mean_, model.var_, model.scale_ = mean, var, scale
        model.n_features_in_ = n
        return model
    return build


# --- pipeline --------------------------------------------------------------------------

def _pipeline_state(model: Any) -> dict[str, Any]:
    steps = []
    for i, (name, step) in enumerate(model.steps):
        codec = codec_for_model(step)
        if codec.model_class in (models.Pipeline, sk_pipeline.Pipeline):
            raise ValidationError("Cannot save a Pipeline nested inside a Pipeline.")
        if i < len(model.steps) - 1 and not hasattr(codec.model_class, "transform"):
            raise ValidationError(f"Cannot save a Pipeline whose step {i} ({codec.type_name}) cannot transform data.")
        steps.append({"name": str(name), "type": codec.type_name, "state": codec.get_state(step)})
    return {"steps": steps}


def _pipeline_builder(make: Callable[[list], Any]) -> Callable[[dict[str, Any], str], Any]:
    def build(state: dict[str, Any], where: str) -> Any:
        steps = _field(state, "steps", where)
        if not isinstance(steps, list) or not steps:
            raise ModelFormatError(f"{where}: parameters.steps must be a non-empty list.")
        built = []
        for i, step in enumerate(steps):
            step_where = f"{where} (pipeline step {i})"
            name = _field(step, "name", step_where)
            type_name = _field(step, "type", step_where)
            if not isinstance(name, str) or not isinstance(type_name, str):
                raise ModelFormatError(f"{step_where}: a step's name and type must be strings.")
            if name in {earlier for earlier, _ in built}:
                raise ModelFormatError(f"{step_where}: the step name {_short(name)} is used twice.")
            codec = codec_for_type(type_name, where=step_where)
            if codec.model_class in (models.Pipeline, sk_pipeline.Pipeline):
                raise ModelFormatError(f"{step_where}: a Pipeline cannot be nested inside a Pipeline.")
            if i < len(steps) - 1 and not hasattr(codec.model_class, "transform"):
                raise ModelFormatError(
                    f"{step_where}: step {i} is a {type_name}, which cannot transform data for the next step."
                )
            built.append((name, codec.build(_field(step, "state", step_where), step_where)))
        for i in range(1, len(built)):
            before, after = built[i - 1][1], built[i][1]
            if before.n_features_in_ != after.n_features_in_:
                raise ModelFormatError(
                    f"{where}: pipeline step {i - 1} outputs {before.n_features_in_} features "
                    f"but step {i} takes {after.n_features_in_}."
                )
        return make(built)
    return build


def _sk_pipeline(steps: list) -> Any:
    return sk_pipeline.Pipeline(steps)


CODECS: dict[str, ModelCodec] = {
    codec.type_name: codec
    for codec in [
        ModelCodec("deployment.LinearRegression", models.LinearRegression, _linear_state,
                   _linear_builder(lambda alpha, fi: models.LinearRegression(alpha=alpha, fit_intercept=fi))),
        ModelCodec("deployment.LogisticRegression", models.LogisticRegression, _logistic_state,
                   _logistic_builder(lambda C: models.LogisticRegression(C=C))),
        ModelCodec("deployment.StandardScaler", models.StandardScaler, _scaler_state,
                   _scaler_builder(lambda m, s: models.StandardScaler(with_mean=m, with_std=s))),
        ModelCodec("deployment.Pipeline", models.Pipeline, _pipeline_state,
                   _pipeline_builder(models.Pipeline)),
        ModelCodec("sklearn.LinearRegression", sk_linear.LinearRegression, _linear_state,
                   _linear_builder(lambda alpha, fi: sk_linear.LinearRegression(fit_intercept=fi))),
        ModelCodec("sklearn.Ridge", sk_linear.Ridge, _linear_state,
                   _linear_builder(lambda alpha, fi: sk_linear.Ridge(alpha=alpha, fit_intercept=fi))),
        ModelCodec("sklearn.LogisticRegression", sk_linear.LogisticRegression, _logistic_state,
                   _logistic_builder(lambda C: sk_linear.LogisticRegression(C=C))),
        ModelCodec("sklearn.StandardScaler", sk_preprocessing.StandardScaler, _scaler_state,
                   _scaler_builder(lambda m, s: sk_preprocessing.StandardScaler(with_mean=m, with_std=s))),
        ModelCodec("sklearn.Pipeline", sk_pipeline.Pipeline, _pipeline_state,
                   _pipeline_builder(_sk_pipeline)),
    ]
}


def codec_for_model(model: Any) -> ModelCodec:
    """The codec for this model's exact type.

    Anything else is a ValidationError that names the model's type and the
    supported ones: ``Cannot save a model of type
    sklearn.tree._classes.DecisionTreeClassifier; supported types are
    deployment.LinearRegression, ...``.
    """
    for codec in CODECS.values():
        if type(model) is codec.model_class:
            return codec
    supported = ", ".join(CODECS)
    raise ValidationError(
        f"Cannot save a model of type {type(model).__module__}.{type(model).__qualname__}; "
        f"supported types are {supported}."
    )


def codec_for_type(type_name: str, *, where: str) -> ModelCodec:
    """The codec for a type name read from a file: a look-up in ``CODECS``, never an import.

    Anything else is a ModelFormatError: ``<where>: unknown model type
    'os.system'; supported types are deployment.LinearRegression, ...``.

    >>> codec_for_type("deployment.Pipeline", where="model.json").model_class.__name__
    'Pipeline'
    """
    codec = CODECS.get(type_name) if isinstance(type_name, str) else None
    if codec is None:
        raise ModelFormatError(
            f"{where}: unknown model type {_short(type_name)}; supported types are {', '.join(CODECS)}."
        )
    return codec
