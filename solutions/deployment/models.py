"""Small numpy models with the scikit-learn estimator API.

These are the models the workbook deploys. They are given code: short
enough to read in one sitting, and exact enough to agree with
scikit-learn's results on the same data to 1e-6. Like scikit-learn's
estimators, ``fit`` returns ``self``, hyperparameters are constructor
arguments, and everything learned from data ends in ``_`` (``coef_``,
``mean_``) and exists only after ``fit``.

>>> import numpy as np
>>> X = np.array([[0.0], [1.0], [2.0]]); y = np.array([1.0, 3.0, 5.0])
>>> LinearRegression().fit(X, y).predict([[3.0]])
array([7.])
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import ValidationError

__all__ = ["LinearRegression", "LogisticRegression", "StandardScaler", "Pipeline"]


def _as_2d_float(X: Any, *, who: str, n_features: int | None = None) -> np.ndarray:
    """Return X as a finite 2-D float64 array, or raise ValidationError saying why."""
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{who}: X must be a 2-D array of numbers ({exc}).") from None
    if array.ndim != 2:
        raise ValidationError(f"{who}: X must be 2-D (rows x features), got {array.ndim}-D.")
    if array.shape[0] == 0:
        raise ValidationError(f"{who}: X has no rows.")
    if n_features is not None and array.shape[1] != n_features:
        raise ValidationError(
            f"{who}: X has {array.shape[1]} features, but the model was fitted with {n_features}."
        )
    if not np.isfinite(array).all():
        row, col = np.argwhere(~np.isfinite(array))[0]
        raise ValidationError(f"{who}: X[{row}, {col}] is {array[row, col]}, not a finite number.")
    return array


class _Estimator:
    """What every model shares: parameters as constructor arguments, a repr, a fitted check."""

    _param_names: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as scikit-learn's ``get_params`` returns them."""
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self) -> None:
        """Raise ValidationError ("This LogisticRegression is not fitted yet; call fit(X, y) first.") before ``fit``."""
        if not hasattr(self, "n_features_in_"):
            raise ValidationError(
                f"This {type(self).__name__} is not fitted yet; call fit(X, y) first."
            )


class LinearRegression(_Estimator):
    """Least squares, or ridge regression when ``alpha > 0``.

    Minimizes ``||y - X w - b||^2 + alpha * ||w||^2``; the intercept ``b`` is
    not penalized, as in scikit-learn's ``LinearRegression`` and ``Ridge``.
    Learned: ``coef_`` (n_features,), ``intercept_`` (float), ``n_features_in_``.
    """

    _param_names = ("alpha", "fit_intercept")

    def __init__(self, alpha: float = 0.0, fit_intercept: bool = True) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept

    def fit(self, X: Any, y: Any) -> "LinearRegression":
        X = _as_2d_float(X, who="LinearRegression.fit")
        y = np.asarray(y, dtype=np.float64).ravel()
        if y.shape[0] != X.shape[0]:
            raise ValidationError(f"LinearRegression.fit: X has {X.shape[0]} rows but y has {y.shape[0]}.")
        if self.alpha < 0:
            raise ValidationError(f"LinearRegression: alpha must be >= 0, got {self.alpha}.")
        x_mean = X.mean(axis=0) if self.fit_intercept else np.zeros(X.shape[1])
        y_mean = y.mean() if self.fit_intercept else 0.0
        Xc, yc = X - x_mean, y - y_mean
        if self.alpha > 0 and X.shape[0] < X.shape[1]:
            # Fewer rows than features: solve the n x n dual system instead of the d x d one.
            gram = Xc @ Xc.T + self.alpha * np.eye(X.shape[0])
            self.coef_ = Xc.T @ np.linalg.solve(gram, yc)
        elif self.alpha > 0:
            gram = Xc.T @ Xc + self.alpha * np.eye(X.shape[1])
            self.coef_ = np.linalg.solve(gram, Xc.T @ yc)
        else:
            self.coef_ = np.linalg.lstsq(Xc, yc, rcond=None)[0]
        self.intercept_ = float(y_mean - x_mean @ self.coef_)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values, shape (n_rows,)."""
        self._check_fitted()
        X = _as_2d_float(X, who="LinearRegression.predict", n_features=self.n_features_in_)
        return X @ self.coef_ + self.intercept_

    def score(self, X: Any, y: Any) -> float:
        """The coefficient of determination R^2 on (X, y)."""
        y = np.asarray(y, dtype=np.float64).ravel()
        residual = ((y - self.predict(X)) ** 2).sum()
        return float(1.0 - residual / ((y - y.mean()) ** 2).sum())


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Written with exp(-|z|) so large |z| never overflows.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class LogisticRegression(_Estimator):
    """L2-regularized logistic regression, binary or multinomial (softmax).

    Minimizes ``C * sum(log loss) + 0.5 * ||W||^2`` (intercepts not
    penalized), the objective of scikit-learn's ``LogisticRegression``, with
    Newton's method, which converges to machine precision in a few steps on
    the workbook's data. Learned: ``classes_``, ``coef_`` (1 or n_classes,
    n_features), ``intercept_``, ``n_features_in_``, ``n_iter_``.
    """

    _param_names = ("C", "max_iter", "tol")

    def __init__(self, C: float = 1.0, max_iter: int = 100, tol: float = 1e-10) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: Any, y: Any) -> "LogisticRegression":
        X = _as_2d_float(X, who="LogisticRegression.fit")
        y = np.asarray(y).ravel()
        if y.shape[0] != X.shape[0]:
            raise ValidationError(f"LogisticRegression.fit: X has {X.shape[0]} rows but y has {y.shape[0]}.")
        if self.C <= 0:
            raise ValidationError(f"LogisticRegression: C must be > 0, got {self.C}.")
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValidationError("LogisticRegression.fit: y needs at least 2 classes.")
        X1 = np.hstack([X, np.ones((X.shape[0], 1))])  # last column: the intercept
        if len(self.classes_) == 2:
            weights = self._fit_binary(X1, y_index.astype(np.float64))[np.newaxis, :]
        else:
            weights = self._fit_multinomial(X1, np.eye(len(self.classes_))[y_index])
            weights[:, -1] -= weights[:, -1].mean()  # intercepts are defined up to a shift
        self.coef_, self.intercept_ = weights[:, :-1].copy(), weights[:, -1].copy()
        self.n_features_in_ = X.shape[1]
        return self

    def _newton(self, objective, gradient_and_hessian, w: np.ndarray) -> np.ndarray:
        """Damped Newton's method: full steps, halved while the objective does not decrease."""
        current = objective(w)
        for self.n_iter_ in range(1, self.max_iter + 1):
            gradient, hessian = gradient_and_hessian(w)
            if np.abs(gradient).max() <= self.tol:
                break
            step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
            t = 1.0
            while t > 1e-10:
                candidate = w - t * step
                value = objective(candidate)
                # A little slack: at the optimum, rounding alone moves the objective.
                if value <= current + 1e-12 * abs(current):
                    break
                t /= 2
            else:
                break  # no step decreases the objective: w is optimal to float precision
            w, current = candidate, value
        return w

    def _fit_binary(self, X1: np.ndarray, y: np.ndarray) -> np.ndarray:
        penalty = np.ones(X1.shape[1])
        penalty[-1] = 0.0

        def objective(w):
            z = X1 @ w
            log_loss = np.logaddexp(0.0, z) - y * z
            return self.C * log_loss.sum() + 0.5 * (penalty * w * w).sum()

        def gradient_and_hessian(w):
            p = _sigmoid(X1 @ w)
            gradient = self.C * X1.T @ (p - y) + penalty * w
            hessian = self.C * (X1.T * (p * (1 - p))) @ X1 + np.diag(penalty)
            return gradient, hessian

        return self._newton(objective, gradient_and_hessian, np.zeros(X1.shape[1]))

    def _fit_multinomial(self, X1: np.ndarray, Y: np.ndarray) -> np.ndarray:
        n_classes, width = Y.shape[1], X1.shape[1]
        penalty = np.ones((n_classes, width))
        penalty[:, -1] = 0.0

        def objective(flat):
            scores = X1 @ flat.reshape(n_classes, width).T
            log_norm = np.logaddexp.reduce(scores, axis=1)
            cross_entropy = log_norm - (Y * scores).sum(axis=1)
            return self.C * cross_entropy.sum() + 0.5 * (penalty.ravel() * flat * flat).sum()

        def gradient_and_hessian(flat):
            P = _softmax(X1 @ flat.reshape(n_classes, width).T)
            gradient = self.C * (P - Y).T @ X1 + penalty * flat.reshape(n_classes, width)
            # Hessian block (k, l) = C * X1^T diag(p_k (delta_kl - p_l)) X1.
            hessian = np.empty((n_classes, width, n_classes, width))
            for k in range(n_classes):
                for l in range(k, n_classes):
                    d = P[:, k] * ((k == l) - P[:, l])
                    block = self.C * (X1.T * d) @ X1
                    hessian[k, :, l, :] = block
                    hessian[l, :, k, :] = block.T
            hessian = hessian.reshape(n_classes * width, n_classes * width)
            hessian += np.diag(penalty.ravel())
            return gradient.ravel(), hessian

        flat = self._newton(objective, gradient_and_hessian, np.zeros(n_classes * width))
        return flat.reshape(n_classes, width)

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores before the sigmoid/softmax: (n_rows,) for binary, (n_rows, n_classes) otherwise."""
        self._check_fitted()
        X = _as_2d_float(X, who="LogisticRegression.predict", n_features=self.n_features_in_)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_rows, n_classes), columns in ``classes_`` order."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = _sigmoid(scores)
            return np.column_stack([1.0 - positive, positive])
        return _softmax(scores)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels, shape (n_rows,)."""
        best = np.argmax(self.predict_proba(X), axis=1)
        return self.classes_[best]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y): the fraction of rows predicted right."""
        return float(np.mean(self.predict(X) == np.asarray(y).ravel()))


class StandardScaler(_Estimator):
    """Centre each feature on its mean and divide by its standard deviation.

    A feature with zero variance keeps a scale of 1 (it is only centred), as
    in scikit-learn. Learned: ``mean_``, ``var_``, ``scale_``, ``n_features_in_``.
    """

    _param_names = ("with_mean", "with_std")

    def __init__(self, with_mean: bool = True, with_std: bool = True) -> None:
        self.with_mean = with_mean
        self.with_std = with_std

    def fit(self, X: Any, y: Any = None) -> "StandardScaler":
        X = _as_2d_float(X, who="StandardScaler.fit")
        self.mean_ = X.mean(axis=0) if self.with_mean else None
        self.var_ = X.var(axis=0) if self.with_std else None
        if self.with_std:
            scale = np.sqrt(self.var_)
            self.scale_ = np.where(scale < 10 * np.finfo(np.float64).eps, 1.0, scale)
        else:
            self.scale_ = None
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = _as_2d_float(X, who="StandardScaler.transform", n_features=self.n_features_in_)
        if self.with_mean:
            X = X - self.mean_
        if self.with_std:
            X = X / self.scale_
        return X

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = _as_2d_float(X, who="StandardScaler.inverse_transform", n_features=self.n_features_in_)
        if self.with_std:
            X = X * self.scale_
        if self.with_mean:
            X = X + self.mean_
        return X


class Pipeline(_Estimator):
    """A chain of steps: transformers, then one final model.

    ``Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])``
    fits each transformer on the output of the one before, then the model.
    """

    _param_names = ("steps",)

    def __init__(self, steps: Sequence[tuple[str, Any]]) -> None:
        steps = list(steps)
        if not steps:
            raise ValidationError("Pipeline: steps must hold at least one (name, estimator) pair.")
        names = [name for name, _ in steps]
        if len(set(names)) != len(names):
            raise ValidationError(f"Pipeline: step names must be unique, got {names}.")
        self.steps = steps

    @property
    def named_steps(self) -> dict[str, Any]:
        return dict(self.steps)

    @property
    def n_features_in_(self) -> int:
        return self.steps[0][1].n_features_in_

    @property
    def classes_(self) -> np.ndarray:
        return self.steps[-1][1].classes_

    def _check_fitted(self) -> None:
        for _, step in self.steps:
            if hasattr(step, "_check_fitted"):
                step._check_fitted()

    def _transform(self, X: Any) -> Any:
        for _, step in self.steps[:-1]:
            X = step.transform(X)
        return X

    def fit(self, X: Any, y: Any = None) -> "Pipeline":
        for _, step in self.steps[:-1]:
            X = step.fit_transform(X, y)
        self.steps[-1][1].fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.steps[-1][1].predict(self._transform(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.steps[-1][1].predict_proba(self._transform(X))

    def score(self, X: Any, y: Any) -> float:
        return self.steps[-1][1].score(self._transform(X), y)
