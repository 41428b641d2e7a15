"""The production story, end to end, as ``make demo`` runs it.

Each step uses one part of the package and prints what a production
engineer would want to see; plots go to the output folder as PNG files.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .data import load_dataset
from .models import LogisticRegression, Pipeline, StandardScaler
from .serialization import load_model, load_serialized, save_model


def _step(title: str) -> None:
    print(f"\n== {title}")


def run_demo(out: str | Path = "build/demo") -> int:
    """Run every step; return 0 when each one did what it should."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    _step("1. Train a model on real data")
    data = load_dataset("breast_cancer", seed=0)
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    model.fit(data.X_train, data.y_train)
    accuracy = model.score(data.X_test, data.y_test)
    print(f"breast cancer: {len(data.X_train)} training rows, {data.n_features} features, "
          f"test accuracy {accuracy:.3f}")

    _step("2. Save it as JSON and load it back")
    path = save_model(model, out / "cancer-1.0.0.json", version="1.0.0", metadata={"accuracy": accuracy})
    envelope = load_serialized(path)
    reloaded = load_model(path)
    identical = np.array_equal(reloaded.predict_proba(data.X_test), model.predict_proba(data.X_test))
    print(f"wrote {path} ({path.stat().st_size:,} bytes), type {envelope.type}, "
          f"version {envelope.version}, checksum {envelope.checksum[:12]}...")
    print(f"reloaded predictions bit-identical: {identical}")

    coef = reloaded.named_steps["model"].coef_.ravel()
    order = np.argsort(np.abs(coef))[-10:]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.barh([data.feature_names[i] for i in order], coef[order], color="tab:blue")
    ax.set_xlabel("coefficient (per standard deviation of the feature)")
    ax.set_title("The ten strongest features of the saved model")
    fig.tight_layout()
    fig.savefig(out / "01_coefficients.png", dpi=120)
    plt.close(fig)

    print(f"\nDemo finished in {time.perf_counter() - started:.1f} s; plots in {out}/.")
    return 0 if identical else 1
