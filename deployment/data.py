"""Real training data, split reproducibly.

The workbook trains on data sets that ship inside scikit-learn, so nothing
is downloaded at run time. ``load_dataset`` returns the same split for the
same seed on every machine.

>>> data = load_dataset("breast_cancer", seed=0)
>>> data.X_train.shape, data.X_test.shape
((426, 30), (143, 30))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split

from .errors import ValidationError

__all__ = ["Dataset", "load_dataset", "DATASETS"]

# name -> (scikit-learn loader, task)
DATASETS = {
    "breast_cancer": (datasets.load_breast_cancer, "classification"),
    "wine": (datasets.load_wine, "classification"),
    "iris": (datasets.load_iris, "classification"),
    "digits": (datasets.load_digits, "classification"),
    "diabetes": (datasets.load_diabetes, "regression"),
}


@dataclass(frozen=True)
class Dataset:
    """A train/test split of one data set, with the names of its columns."""

    name: str
    task: str  # "classification" or "regression"
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    target_names: list[str]

    @property
    def n_features(self) -> int:
        """The number of columns (features) of every row."""
        return self.X_train.shape[1]


def load_dataset(name: str, *, test_size: float = 0.25, seed: int = 0) -> Dataset:
    """Load one of ``DATASETS`` and split it into train and test sets.

    Classification sets are split stratified, so both halves keep the class
    balance. The same ``seed`` gives the same split everywhere. Any other
    name is a ValidationError: ``Unknown data set 'housing'; choose one of
    ['breast_cancer', 'diabetes', 'digits', 'iris', 'wine'].``
    """
    if name not in DATASETS:
        raise ValidationError(f"Unknown data set {name!r}; choose one of {sorted(DATASETS)}.")
    loader, task = DATASETS[name]
    bunch = loader()
    X, y = bunch.data.astype(np.float64), bunch.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed,
        stratify=y if task == "classification" else None,
    )
    target_names = [str(t) for t in getattr(bunch, "target_names", ["target"])]
    return Dataset(name, task, X_train, X_test, y_train, y_test,
                   [str(f) for f in bunch.feature_names], target_names)
