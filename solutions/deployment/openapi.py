"""The OpenAPI document's schemas (given), built from the served model so a client generator can trust them.

FastAPI writes ``GET /openapi.json`` from the routes. The predict routes
read their bodies themselves (after the key check, with size and time
limits), so their request schemas are given here, with the served model's
real width and row limit, and examples the server accepts. Response
models (pydantic) only document the answers: the handlers build them as
plain JSON.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ErrorBody", "Prediction", "MlflowPrediction", "Probabilities", "ModelReady", "ModelList", "Liveness",
    "Health", "rows_schema", "request_body", "error_responses", "csv_example",
]


class ErrorBody(BaseModel):
    """Every error, on every route."""

    error: str = Field(description="One sentence saying what was wrong and where.")
    type: str = Field(description="The error's class, e.g. ValidationError or AuthenticationError.")


class Prediction(BaseModel):
    """The workbook's answer (``/predict``, KServe's ``:predict``)."""

    predictions: list[float | int | str] = Field(description="One prediction per row, in order.")
    version: str = Field(description="The model version that answered.")
    timestamp: str = Field(description="When the answer was made: ISO 8601, UTC, ending in Z.")
    fallback: bool | None = Field(None, description="Present and true when the fallback model answered.")


class MlflowPrediction(BaseModel):
    """MLflow's scoring answer."""

    predictions: list[float | int | str] = Field(description="One prediction per row, in order.")


class Probabilities(BaseModel):
    """A classifier's probabilities (``/predict_proba``)."""

    probabilities: list[list[float]] = Field(description="One list per row, one probability per class.")
    classes: list[float | int | str] = Field(description="The classes, in the order of each row's list.")
    version: str
    timestamp: str
    fallback: bool | None = None


class ModelReady(BaseModel):
    """KServe V1 readiness of one model."""

    name: str
    ready: bool
    version: str
    n_features: int = Field(description="Values each row must hold.")


class ModelList(BaseModel):
    """KServe V1's list of the models served."""

    models: list[str]


class Liveness(BaseModel):
    """KServe V1 liveness."""

    status: str = Field(description='Always "alive" while the server answers.')


class Health(BaseModel):
    """The API's own health report (``InferenceAPI.health``)."""

    status: str = Field(description="healthy, degraded or unhealthy.")
    latency_ms: float = Field(description="p95 latency of the recent requests, in milliseconds.")
    uptime_s: float
    version: str
    error_rate: float
    reasons: list[str]


def rows_schema(n_features: int, max_rows: int) -> dict[str, Any]:
    """JSON Schema of a batch: 1 to ``max_rows`` rows of exactly ``n_features`` finite numbers."""
    return {
        "type": "array", "minItems": 1, "maxItems": max_rows,
        "description": f"1 to {max_rows} rows, each of exactly {n_features} finite numbers.",
        "items": {"type": "array", "minItems": n_features, "maxItems": n_features, "items": {"type": "number"}},
    }


def request_body(schema: dict[str, Any], example: Any, *, csv: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI ``requestBody`` reading JSON (and CSV, when ``csv`` holds its schema and example)."""
    content = {"application/json": {"schema": schema, "example": example}}
    if csv is not None:
        content["text/csv"] = csv
    return {"required": True, "content": content}


def csv_example(n_features: int) -> dict[str, Any]:
    """The ``text/csv`` body of ``/invocations``: a header line, then one line of numbers per row."""
    header = ",".join(f"x{i}" for i in range(n_features))
    return {"schema": {"type": "string"}, "example": header + "\n" + ",".join(["0.0"] * n_features) + "\n"}


ERROR_DESCRIPTIONS = {
    400: "Bad input: the message names the row and column.",
    401: "No API key, or a wrong one (send Authorization: Bearer KEY or X-API-Key: KEY).",
    404: "No model of that name here.",
    408: "The body did not arrive within the server's body timeout.",
    413: "Too many rows, or a body over the size limit.",
    415: "A Content-Type this route does not read.",
    429: "Over the rate limit, or too many wrong keys; see Retry-After (seconds).",
    501: "Not implemented by this server.",
    503: "The model cannot answer.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` entries documenting each status with ``ErrorBody``."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = {"Retry-After": {"description": "Seconds to wait, rounded up.",
                                                "schema": {"type": "integer"}}}
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        documented[status] = entry
    return documented
