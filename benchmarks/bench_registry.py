"""Benchmark Part 4: a registry holding 1,000 versions of one small model.

Register, list and load times, each against a baseline measured in the
same run, so the ratios hold on a noisy shared machine:

* registering a version against Part 1's ``save_model`` of the same model,
  the two interleaved and compared by their medians (the registry adds a
  lock, a check of the existing versions, a temporary folder, a rename
  and two folder fsyncs);
* ``list_versions`` against ``os.listdir`` of the model's folder (the
  registry adds the semantic-version sort); target: under 50 ms;
* loading by version, ``"latest"`` and ``"production"`` against Part 1's
  ``load_model`` of the same file (by stage adds one small JSON read);
* a signed registry (``signing_key=``) against the unsigned one: one
  HMAC-SHA256 of the file on every register and every load (and of the
  stage file on every promotion and every load by stage).

    PYTHONSAFEPATH=1 PYTHONPATH=solutions .venv/bin/python benchmarks/bench_registry.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import timeit
from pathlib import Path

from deployment import LogisticRegression, ModelRegistry, load_dataset, load_model, save_model

N_VERSIONS = 1_000
N_SIGNED = 100  # signed registrations, interleaved with as many unsigned ones
REPEATS = 7
SAVE_EVERY = 10  # one plain save_model per 10 registrations, as the baseline
LIST_TARGET_MS = 50.0


def time_once_s(action) -> float:
    """How long one call of ``action`` takes, in seconds."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def best_time_s(action, repeats: int = REPEATS) -> float:
    """The fastest of several runs (seconds): the one least disturbed by other work on the machine."""
    return min(timeit.repeat(action, number=1, repeat=repeats))


def main() -> None:
    data = load_dataset("iris", seed=0)
    model = LogisticRegression().fit(data.X_train, data.y_train)  # 3 classes x 4 features
    folder = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    try:
        registry = ModelRegistry(folder / "registry")
        key = b"a benchmark's signing key"
        signed = ModelRegistry(folder / "signed", signing_key=key)
        unsigned = ModelRegistry(folder / "unsigned")
        versions = [f"{1 + i // 100}.{i % 100}.0" for i in range(N_VERSIONS)]

        # Interleaved, so a busy moment on the machine (or a slow fsync) hits both alike.
        (folder / "plain").mkdir()
        register_s, save_s = [], []
        for i, version in enumerate(versions):
            register_s.append(time_once_s(
                lambda: registry.register_model("iris", version, model, metadata={"accuracy": 0.97})))
            if i % SAVE_EVERY == 0:
                save_s.append(time_once_s(lambda: save_model(model, folder / "plain" / f"{i}.json")))
        register_ms, save_ms = statistics.median(register_s) * 1000, statistics.median(save_s) * 1000

        signed_s, unsigned_s = [], []
        for version in versions[:N_SIGNED]:
            signed_s.append(time_once_s(lambda: signed.register_model("iris", version, model)))
            unsigned_s.append(time_once_s(lambda: unsigned.register_model("iris", version, model)))
        signed_ms, unsigned_ms = statistics.median(signed_s) * 1000, statistics.median(unsigned_s) * 1000
        for both in (signed, unsigned):
            both.promote_model("iris", versions[50], "production")
        signed_loads = {
            "a version": (best_time_s(lambda: signed.load_model("iris", versions[50])),
                          best_time_s(lambda: unsigned.load_model("iris", versions[50]))),
            '"production"': (best_time_s(lambda: signed.load_model("iris", "production")),
                             best_time_s(lambda: unsigned.load_model("iris", "production"))),
        }

        registry.promote_model("iris", versions[500], "production")
        model_folder = folder / "registry" / "iris"
        one_file = model_folder / versions[500] / "model.json"

        list_s = best_time_s(lambda: registry.list_versions("iris"))
        listdir_s = best_time_s(lambda: os.listdir(model_folder))
        assert len(registry.list_versions("iris")) == N_VERSIONS

        plain_load_s = best_time_s(lambda: load_model(one_file))
        loads = {
            "a version": best_time_s(lambda: registry.load_model("iris", versions[500])),
            '"latest"': best_time_s(lambda: registry.load_model("iris", "latest")),
            '"production"': best_time_s(lambda: registry.load_model("iris", "production")),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"Registry of {N_VERSIONS:,} versions of a {model.coef_.size}-coefficient model "
          f"(best of {REPEATS} runs; ratios against a baseline from the same run)")
    print(f"  register one version   {register_ms:8.2f} ms   {register_ms / save_ms:5.1f}x save_model "
          f"({save_ms:.2f} ms; medians, interleaved)")
    print(f"  list_versions          {list_s * 1000:8.2f} ms   {list_s / listdir_s:5.1f}x os.listdir "
          f"({listdir_s * 1000:.2f} ms)   target < {LIST_TARGET_MS:.0f} ms: "
          f"{'met' if list_s * 1000 < LIST_TARGET_MS else 'MISSED'}")
    for label, seconds in loads.items():
        print(f"  load {label:<17} {seconds * 1000:8.2f} ms   {seconds / plain_load_s:5.1f}x load_model "
              f"({plain_load_s * 1000:.2f} ms)")
    print(f"Signed registry against an unsigned one ({N_SIGNED} versions each)")
    print(f"  register, signed       {signed_ms:8.2f} ms   {signed_ms / unsigned_ms:5.2f}x unsigned "
          f"({unsigned_ms:.2f} ms; medians, interleaved)")
    for label, (signed_load_s, unsigned_load_s) in signed_loads.items():
        print(f"  load {label:<12} signed {signed_load_s * 1000:8.2f} ms   {signed_load_s / unsigned_load_s:5.2f}x "
              f"unsigned ({unsigned_load_s * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
