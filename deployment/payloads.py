"""Reading a request's body (given): size and time limits, strict JSON, and each protocol's shapes.

A body is read only after the key and the rate limit are checked (see
``server.py``), and then with limits: at most ``max_bytes`` bytes (HTTP
413 as soon as the count passes it, or at once when ``Content-Length``
says so) within ``timeout_s`` seconds (HTTP 408).

JSON is parsed strictly: a duplicated key (``{"instances": [...],
"instances": [...]}``) is refused instead of silently keeping the last
one, and so is anything but a JSON object at the top. A ``Content-Type``
other than ``application/json`` (``text/csv`` too on ``/invocations``) is
refused with HTTP 415; a request without one is read as JSON, as the
KServe and MLflow clients send it.

Each protocol then says where the rows are:

- the workbook's ``/predict`` and KServe V1: ``{"instances": rows}`` or ``{"inputs": rows}``;
- MLflow's ``/invocations``: exactly one of ``inputs``, ``instances``,
  ``dataframe_split`` (``{"columns": [...], "data": rows}``) and
  ``dataframe_records`` (``[{"column": value, ...}, ...]``), or a CSV
  table with a header line.

>>> kserve_instances({"inputs": [[1.0, 2.0]]})
[[1.0, 2.0]]
>>> mlflow_instances({"dataframe_records": [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]})
[[1.0, 2.0], [3.0, 4.0]]
>>> parse_json(b'{"instances": [], "instances": [[1]]}')
Traceback (most recent call last):
...
deployment.errors.ValidationError: The JSON body repeats the key 'instances'; send each key once.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from .errors import BatchTooLargeError, ValidationError
from .responses import RequestTimeoutError, UnsupportedMediaTypeError

__all__ = [
    "ClientDisconnect", "read_body", "media_type", "require_media_type", "parse_json",
    "kserve_instances", "mlflow_instances", "csv_instances",
]

JSON = "application/json"
CSV = "text/csv"
MLFLOW_FORMATS = ("inputs", "instances", "dataframe_split", "dataframe_records")


async def read_body(request: Request, *, max_bytes: int, timeout_s: float) -> bytes:
    """The request's body, read within ``timeout_s`` seconds and refused past ``max_bytes`` bytes.

    Raises ``BatchTooLargeError`` (413) when ``Content-Length`` or the bytes
    received pass ``max_bytes`` (the rest is never kept),
    ``RequestTimeoutError`` (408) when the body is still arriving after
    ``timeout_s``, and Starlette's ``ClientDisconnect`` when the client leaves.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BatchTooLargeError(f"The request body is {int(declared):,} bytes; the limit is {max_bytes:,}.")
    chunks: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes:
                    raise BatchTooLargeError(f"The request body is over the limit of {max_bytes:,} bytes.")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(f"The request body did not arrive within {timeout_s:g} s.") from None
    return b"".join(chunks)


def media_type(request: Request) -> str:
    """The request's media type, lowercased, without parameters (``application/json``); ``""`` when absent."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_media_type(request: Request, accepted: tuple[str, ...] = (JSON,)) -> str:
    """The request's media type if it is one of ``accepted`` (none given counts as JSON), else a 415 error."""
    kind = media_type(request) or JSON
    if kind not in accepted:
        raise UnsupportedMediaTypeError(
            f"The body's Content-Type is {kind!r}; this route reads {' or '.join(accepted)}."
        )
    return kind


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' object hook: build the object, or refuse a key that appears twice."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValidationError(f"The JSON body repeats the key {key!r}; send each key once.")
        document[key] = value
    return document


def parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; ValidationError if it is not JSON, not an object, or repeats a key."""
    try:
        document = json.loads(body, object_pairs_hook=_refuse_duplicate_keys)
    except ValidationError:
        raise
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)[:80]
        raise ValidationError(f"The request body is not valid JSON ({reason}).") from None
    if not isinstance(document, dict):
        raise ValidationError(f"The request body must be a JSON object, not a JSON {type(document).__name__}.")
    return document


def _the_one_key(document: dict[str, Any], keys: tuple[str, ...], allowed_extra: tuple[str, ...] = ()) -> str:
    """The single key of ``keys`` that ``document`` holds, or a ValidationError naming what is wrong."""
    found = [key for key in keys if key in document]
    if len(found) != 1:
        listed = ", ".join(repr(key) for key in keys)
        held = ", ".join(repr(key) for key in document) or "no key"
        raise ValidationError(f"The body must hold exactly one of {listed}; it holds {held}.")
    unknown = [key for key in document if key not in keys and key not in allowed_extra]
    if unknown:
        raise ValidationError(f"The body holds {unknown[0]!r}, which this route does not read.")
    return found[0]


def kserve_instances(document: dict[str, Any]) -> Any:
    """The rows of a KServe V1 (and ``/predict``) body: ``{"instances": rows}`` or ``{"inputs": rows}``."""
    return document[_the_one_key(document, ("instances", "inputs"))]


def mlflow_instances(document: dict[str, Any]) -> Any:
    """The rows of an MLflow scoring body (``inputs``, ``instances``, ``dataframe_split`` or ``dataframe_records``).

    Columns are taken in the order the client gives them (``columns`` of a
    split frame, the keys of the first record), as MLflow hands the model a
    frame in that order. Every record must have the same keys.
    """
    key = _the_one_key(document, MLFLOW_FORMATS)
    value = document[key]
    if key in ("inputs", "instances"):
        return value
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise ValidationError('dataframe_split must be an object {"columns": [...], "data": [[...], ...]}.')
        columns = value.get("columns", [])
        if not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)
                and len(set(columns)) == len(columns)):
            raise ValidationError("dataframe_split's columns must be a list of distinct column names.")
        if columns and isinstance(value["data"], list):
            for r, row in enumerate(value["data"]):
                if isinstance(row, list) and len(row) != len(columns):
                    raise ValidationError(f"dataframe_split row {r} has {len(row)} values for {len(columns)} columns.")
        return value["data"]
    if not isinstance(value, list) or not value or not all(isinstance(record, dict) for record in value):
        raise ValidationError("dataframe_records must be a non-empty list of objects, one per row.")
    columns = list(value[0])
    for r, record in enumerate(value):
        if set(record) != set(columns):
            raise ValidationError(f"dataframe_records record {r} has other keys than record 0.")
    return [[record[column] for column in columns] for record in value]


def csv_instances(body: bytes) -> list[list[float]]:
    """The rows of a CSV body: a header line, then one line of numbers per row (as ``pandas.DataFrame.to_csv``).

    An empty cell, or one that is not a number, is a ValidationError naming
    its row (counted from 0 after the header) and column.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("The CSV body is not UTF-8 text.") from None
    lines = list(csv.reader(io.StringIO(text)))
    if len(lines) < 2:
        raise ValidationError("The CSV body needs a header line and at least one row.")
    header, rows = lines[0], lines[1:]
    instances = []
    for r, row in enumerate(rows):
        if len(row) != len(header):
            raise ValidationError(f"CSV row {r} has {len(row)} values for {len(header)} columns.")
        values = []
        for c, cell in enumerate(row):
            try:
                values.append(float(cell))
            except ValueError:
                raise ValidationError(f"CSV row {r}, column {c} is {cell[:20]!r}, not a number.") from None
        instances.append(values)
    return instances
