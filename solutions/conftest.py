"""The names the reference package's docstring examples use, for ``pytest --doctest-modules``.

The instructor's ``make test`` runs every ``>>>`` example in
``solutions/deployment`` as a doctest. Each example may use the names
below without defining them; each runs in a fresh temporary folder (the
working directory), where ``models/cancer.json`` already holds ``model``.

Not part of the student release: students read the examples, they do not
run them as tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def _trained():
    from deployment import LogisticRegression, Pipeline, StandardScaler, load_dataset

    data = load_dataset("breast_cancer", seed=0)
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(data.X_train, data.y_train)
    v1 = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=0.01))]).fit(data.X_train, data.y_train)
    return data, model, v1


@pytest.fixture(autouse=True)
def _doctest_names(request, tmp_path, _trained, doctest_namespace):
    """Fill the doctest namespace and run each example in its own temporary folder."""
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    import httpx

    import deployment
    from deployment import APIConfig, InferenceAPI, ModelRegistry, save_model

    data, model, v1 = _trained
    previous = Path.cwd()
    os.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    save_model(model, "models/cancer.json", version="1.0.0")
    doctest_namespace.update({name: value for name, value in vars(deployment).items() if not name.startswith("_")})
    doctest_namespace.update(
        np=np, pd=pd, Path=Path, httpx=httpx, deployment=deployment,
        data=data, X=data.X_test, X_train=data.X_train, y_train=data.y_train,
        X_test=data.X_test, y_test=data.y_test, row=data.X_test[0].tolist(),
        model=model, v1=v1, v2=model,
        api=InferenceAPI(model, APIConfig(version="1.0.0")),
        registry=ModelRegistry(tmp_path / "registry"),
    )
    try:
        yield
    finally:
        os.chdir(previous)
