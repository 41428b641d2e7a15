"""Benchmark Part 1: save and load a model of one million parameters.

Our JSON format against pickle and numpy.save, measured in the same run,
so the ratios hold on a noisy shared machine. Targets (issue 2): loading
within 5x of pickle, and a save + load round trip under 1 s.

    PYTHONSAFEPATH=1 PYTHONPATH=solutions .venv/bin/python benchmarks/bench_serialization.py
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
import timeit
from pathlib import Path

import numpy as np

from deployment import LinearRegression, load_model, save_model

N_PARAMETERS = 1_000_000
REPEATS = 5


def best_time_s(action, repeats: int = REPEATS) -> float:
    """The fastest of several runs (seconds): the one least disturbed by other work on the machine."""
    return min(timeit.repeat(action, number=1, repeat=repeats))


def main() -> None:
    rng = np.random.default_rng(0)
    model = LinearRegression(alpha=1.0).fit(rng.normal(size=(8, N_PARAMETERS)), rng.normal(size=8))
    folder = Path(tempfile.mkdtemp(prefix="bench-serialization-"))
    try:
        json_path, pickle_path, npy_path = folder / "model.json", folder / "model.pkl", folder / "coef.npy"

        def pickle_save():
            with open(pickle_path, "wb") as handle:
                pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)

        def pickle_load():
            with open(pickle_path, "rb") as handle:
                return pickle.load(handle)

        rows = {
            "json (ours)": (lambda: save_model(model, json_path), lambda: load_model(json_path), json_path),
            "pickle": (pickle_save, pickle_load, pickle_path),
            "numpy.save": (lambda: np.save(npy_path, model.coef_), lambda: np.load(npy_path), npy_path),
        }
        results = {}
        for name, (save, load, path) in rows.items():
            save_s = best_time_s(save)
            load_s = best_time_s(load)
            results[name] = (save_s, load_s, path.stat().st_size)

        assert np.array_equal(load_model(json_path).coef_, model.coef_), "round trip lost bits"
        base_save, base_load, base_size = results["pickle"]
        print(f"model: LinearRegression with {N_PARAMETERS:,} parameters; best of {REPEATS} runs\n")
        print(f"{'format':<13}{'save ms':>9}{'load ms':>9}{'size MB':>9}{'save/pickle':>13}{'load/pickle':>13}{'size/pickle':>13}")
        for name, (save_s, load_s, size) in results.items():
            print(f"{name:<13}{save_s * 1e3:>9.1f}{load_s * 1e3:>9.1f}{size / 1e6:>9.2f}"
                  f"{save_s / base_save:>13.1f}{load_s / base_load:>13.1f}{size / base_size:>13.2f}")
        save_s, load_s, _ = results["json (ours)"]
        print(f"\nround trip (save + load): {(save_s + load_s) * 1e3:.0f} ms (target < 1000 ms): "
              f"{'met' if save_s + load_s < 1 else 'MISSED'}")
        print(f"load / pickle load: {load_s / base_load:.1f}x (target <= 5x): "
              f"{'met' if load_s <= 5 * base_load else 'MISSED'}")

    finally:
        shutil.rmtree(folder, ignore_errors=True)

if __name__ == "__main__":
    main()
