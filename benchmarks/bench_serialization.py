"""Benchmark Part 1: save and load a model of one million parameters.

Our JSON format against pickle and numpy.save, measured in the same run,
so the ratios hold on a noisy shared machine. Two more rows separate what
the format costs from what its safety costs: the same JSON read and
written with no checks at all (``json.loads`` and base64, nothing else),
and our format signed (``signing_key=``: one more canonical pass over the
envelope on each side). Targets (issue 2): loading within 5x of pickle,
and a save + load round trip under 1 s.

    PYTHONSAFEPATH=1 PYTHONPATH=solutions .venv/bin/python benchmarks/bench_serialization.py
"""

from __future__ import annotations

import base64
import json
import pickle
import shutil
import tempfile
import timeit
from pathlib import Path

import numpy as np

from deployment import LinearRegression, load_model, save_model

N_PARAMETERS = 1_000_000
REPEATS = 5
KEY = b"benchmark signing key"


def best_time_s(action, repeats: int = REPEATS) -> float:
    """The fastest of several runs (seconds): the one least disturbed by other work on the machine."""
    return min(timeit.repeat(action, number=1, repeat=repeats))


def main() -> None:
    rng = np.random.default_rng(0)
    model = LinearRegression(alpha=1.0).fit(rng.normal(size=(8, N_PARAMETERS)), rng.normal(size=8))
    folder = Path(tempfile.mkdtemp(prefix="bench-serialization-"))
    try:
        paths = {name: folder / f"model.{name}" for name in ("json", "signed", "bare", "pkl", "npy")}

        def bare_save():
            coef = {"dtype": "float64", "shape": [N_PARAMETERS],
                    "base64": base64.b64encode(model.coef_.astype("<f8").tobytes()).decode("ascii")}
            paths["bare"].write_text(json.dumps({"coef": coef, "intercept": model.intercept_}))

        def bare_load():
            document = json.loads(paths["bare"].read_text())
            return np.frombuffer(base64.b64decode(document["coef"]["base64"]), dtype="<f8"), document["intercept"]

        def pickle_save():
            with open(paths["pkl"], "wb") as handle:
                pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)

        def pickle_load():
            with open(paths["pkl"], "rb") as handle:
                return pickle.load(handle)

        rows = {
            "json (ours)": (lambda: save_model(model, paths["json"]), lambda: load_model(paths["json"]), "json"),
            "json signed": (lambda: save_model(model, paths["signed"], signing_key=KEY),
                            lambda: load_model(paths["signed"], signing_key=KEY), "signed"),
            "json, no checks": (bare_save, bare_load, "bare"),
            "pickle": (pickle_save, pickle_load, "pkl"),
            "numpy.save": (lambda: np.save(paths["npy"], model.coef_), lambda: np.load(paths["npy"]), "npy"),
        }
        results = {}
        for name, (save, load, key) in rows.items():
            save_s = best_time_s(save)
            load_s = best_time_s(load)
            results[name] = (save_s, load_s, paths[key].stat().st_size)

        assert np.array_equal(load_model(paths["json"]).coef_, model.coef_), "round trip lost bits"
        assert np.array_equal(load_model(paths["signed"], signing_key=KEY).coef_, model.coef_), "signed round trip lost bits"
        base_save, base_load, base_size = results["pickle"]
        print(f"model: LinearRegression with {N_PARAMETERS:,} parameters; best of {REPEATS} runs\n")
        print(f"{'format':<17}{'save ms':>9}{'load ms':>9}{'size MB':>9}{'save/pickle':>13}{'load/pickle':>13}{'size/pickle':>13}")
        for name, (save_s, load_s, size) in results.items():
            print(f"{name:<17}{save_s * 1e3:>9.1f}{load_s * 1e3:>9.1f}{size / 1e6:>9.2f}"
                  f"{save_s / base_save:>13.1f}{load_s / base_load:>13.1f}{size / base_size:>13.2f}")
        save_s, load_s, _ = results["json (ours)"]
        _, bare_load_s, _ = results["json, no checks"]
        _, signed_load_s, _ = results["json signed"]
        print(f"\nour checks (limits, fields, checksum, arrays) cost {load_s / bare_load_s:.1f}x a bare json.loads + base64 load;"
              f" signing adds {signed_load_s / load_s:.2f}x to a load")
        print(f"round trip (save + load): {(save_s + load_s) * 1e3:.0f} ms (target < 1000 ms): "
              f"{'met' if save_s + load_s < 1 else 'MISSED'}")
        print(f"load / pickle load: {load_s / base_load:.1f}x (target <= 5x): "
              f"{'met' if load_s <= 5 * base_load else 'MISSED'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
