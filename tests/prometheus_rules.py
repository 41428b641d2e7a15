"""What a Prometheus user expects of a /metrics page, as checks the tests share (not a test module).

``problems(text)`` lists what breaks the rules, checked with
``prometheus_client``'s parser and plain assertions, so the tests run the
same rules whether or not ``promtool`` is installed; ``promtool_problems``
runs ``promtool check metrics`` itself (None when the binary is absent).
"""

from __future__ import annotations

import re
import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

NOT_BASE_UNITS = ("_ms", "_milliseconds", "_us", "_microseconds", "_minutes", "_hours", "_mb", "_mib", "_kb",
                  "_kib", "_gb", "_percent", "_rps")
"""Name parts that say a unit Prometheus wants in its base form (seconds, bytes, ratios)."""

WINDOW_WORDS = ("window", "throughput", "error_rate", "_rate", "per_second", "accuracy", "p50", "p95", "p99")
"""Name parts of statistics over a window, which Prometheus computes itself with rate() and histogram_quantile()."""


def problems(text: str) -> list[str]:
    """Every rule the page breaks, one sentence each; an empty list for a clean page."""
    found = []
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        return [f"prometheus_client cannot parse the page: {exc}"]
    if not text.endswith("\n"):
        found.append("the page does not end with a newline")
    for family in families:
        name = family.name + ("_total" if family.type == "counter" else "")
        for line in (f"# HELP {name} ", f"# TYPE {name} {family.type}"):
            if line not in text:
                found.append(f"{name} has no line starting {line.strip()!r}")
        if any(part in f"{name}_" for part in (f"{unit}_" for unit in NOT_BASE_UNITS)):
            found.append(f"{name} names a unit that is not a base unit (seconds, bytes)")
        if name.startswith("model_") and any(word in name for word in WINDOW_WORDS):
            found.append(f"{name} looks like a window statistic, which Prometheus computes itself")
        for sample in family.samples:
            if family.type == "counter" and not sample.name.endswith(("_total", "_created")):
                found.append(f"counter sample {sample.name} does not end in _total")
            if "quantile" in sample.labels and family.type != "summary":
                found.append(f"{sample.name} has a quantile label but is a {family.type}")
        if family.type == "histogram":
            found += _histogram_problems(family)
    return found


def _histogram_problems(family) -> list[str]:
    found = []
    series: dict[tuple, dict[str, float]] = {}
    for sample in family.samples:
        key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        values = series.setdefault(key, {})
        if sample.name.endswith("_bucket"):
            values[sample.labels["le"]] = sample.value
        else:
            values[sample.name[len(family.name):]] = sample.value
    for key, values in series.items():
        buckets = sorted(((float(le), count) for le, count in values.items() if not le.startswith("_")))
        counts = [count for _, count in buckets]
        if not buckets or buckets[-1][0] != float("inf"):
            found.append(f"{family.name}{dict(key)} has no +Inf bucket")
            continue
        if counts != sorted(counts):
            found.append(f"{family.name}{dict(key)} buckets are not cumulative")
        if values.get("_count") != counts[-1]:
            found.append(f"{family.name}{dict(key)} _count differs from its +Inf bucket")
        if "_sum" not in values:
            found.append(f"{family.name}{dict(key)} has no _sum")
    return found


def promtool_problems(text: str) -> list[str] | None:
    """What ``promtool check metrics`` reports about the page, or None when promtool is not installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return None
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    report = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return report if result.returncode != 0 else []


def sample_values(text: str) -> dict[tuple[str, tuple], float]:
    """The page's samples: {(sample name, sorted labels): value}, read with prometheus_client's parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


MODEL_LINE = re.compile(r"^(#\s+\w+\s+)?model_")


def model_lines(text: str) -> list[str]:
    """The page's lines about ``model_*`` metrics (no process metrics, which differ between processes)."""
    return [line for line in text.splitlines() if MODEL_LINE.match(line)]
