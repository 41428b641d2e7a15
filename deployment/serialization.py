"""Part 1: saving a model to a JSON file and loading it back, safely.

A model file is a JSON object, the *envelope*::

    {
      "format_version": 1,
      "type": "deployment.LogisticRegression",
      "version": "1.0.0",
      "metadata": {"trained_at": "2026-01-31T12:00:00Z", "accuracy": 0.97},
      "checksum": "<sha256 hex of the canonical JSON of parameters>",
      "parameters": {"C": 1.0, "coef": {"dtype": "float64", "shape": [1, 30], "data": [...]}, ...}
    }

Why JSON and not pickle: a person can read it, any language can load it,
and loading it runs no code. Why a checksum: a file damaged after it was
saved (a truncated copy, a flipped bit, a careless hand edit) is refused
instead of silently serving a different model. A checksum cannot stop a
forger, who simply recomputes it; for that, sign the file: with
``signing_key=`` the envelope also holds ``"signature"``, an HMAC-SHA256 of
the canonical envelope under a secret key, and a load given the same key
refuses a file that is unsigned or whose signature does not match. Why an
atomic write: a crash mid-save must never leave a half-written file where a
good model used to be. Why limits (``MAX_FILE_BYTES``, ``MAX_JSON_DEPTH``,
``MAX_ARRAY_DIMENSIONS``, ``MAX_ARRAY_ELEMENTS``, ``MAX_STRING_LENGTH``): a
file from someone else may be written to hurt the loader, so its size, its
nesting and the size of every array are checked before anything is
allocated or built. ``save_model`` never writes a file that ``load_model``
would refuse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFormatError, ValidationError
from .model_codecs import codec_for_model, codec_for_type
from .versions import validate_version

__all__ = [
    "FORMAT_VERSION", "MAX_FILE_BYTES", "MAX_JSON_DEPTH", "MAX_ARRAY_DIMENSIONS", "MAX_ARRAY_ELEMENTS",
    "MAX_STRING_LENGTH", "SerializedModel", "save_model", "load_model", "load_serialized", "build_model",
    "encode_array", "decode_array", "parameters_checksum", "envelope_signature", "check_signature",
    "atomic_write_text", "fsync_folder", "json_depth",
]

FORMAT_VERSION = 1
"""The newest file format this code writes and reads."""

INLINE_LIMIT = 10_000
"""Arrays up to this many elements are written as readable numbers; larger ones as base64 bytes."""

ARRAY_DTYPES = ("float64", "float32", "int64", "int32", "bool", "str")
"""The element types an encoded array may have."""

# --- limits: what a model file may hold, so that no file can hurt the loader ---------------

MAX_FILE_BYTES = 16 * 1024 * 1024
"""The largest model file, in bytes (16 MiB), checked before the file is read.

Parsing JSON builds Python objects that take up to about 20 times the
file's size in memory (``[[],[],...]``), so this bounds what a forged file
can cost to about 350 MB. A float64 array stored as base64 takes 10.7
bytes an element, so a model of up to about 1.5 million parameters fits;
a larger one needs a binary format (see the notebook's format comparison).
"""

MAX_JSON_DEPTH = 32
"""The deepest nesting of JSON arrays and objects in a model file.

A model's own parameters nest 7 deep (envelope, parameters, steps, step,
state, array, data); the rest is room for metadata. Python's ``json``
parses one level per recursive call, so a document nested 100,000 deep
would otherwise end in a ``RecursionError`` instead of a clear refusal.
"""

MAX_ARRAY_DIMENSIONS = 8
"""The most dimensions an encoded array may have (the models here use 1 or 2)."""

MAX_ARRAY_ELEMENTS = 10_000_000
"""The most elements an encoded array may have: 80 MB of float64.

Counted with Python integers (``math.prod``), which never overflow:
``np.prod([4294967296, 4294967296])`` wraps around to 0 in 64-bit integers.
A size of 0 counts as 1 here, so an empty array cannot hide a huge shape
such as ``[0, 4611686018427387904]``, which numpy refuses to make.
"""

MAX_STRING_LENGTH = 1_000
"""The longest string an encoded array may hold (a class label), in characters.

numpy stores every string of an array at the length of the longest one,
so one forged label of a million characters among a thousand short ones
would ask for 4 GB.
"""


@dataclass
class SerializedModel:
    """The envelope of a model file, as stored (arrays still encoded)."""

    type: str
    version: str
    parameters: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    checksum: str = ""
    signature: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The envelope as a JSON-ready dict, in the order the file shows it (``signature`` only when signed)."""
        envelope = {
            "format_version": self.format_version,
            "type": self.type,
            "version": self.version,
            "metadata": self.metadata,
            "checksum": self.checksum,
        }
        if self.signature is not None:
            envelope["signature"] = self.signature
        envelope["parameters"] = self.parameters
        return envelope


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with a ``Z``: ``2026-01-31T12:00:00.123456Z``."""
    moment = moment or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        raise ValidationError(f"Timestamp {moment!r} has no time zone; use a UTC datetime.")
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def json_depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value``: 0 for a number or a string, 1 for ``[1, 2]``.

    Walks with a stack of its own instead of recursion, so a value nested
    100,000 deep is measured, not a ``RecursionError``. Tuples count as
    lists (``json.dumps`` writes them as arrays).

    >>> json_depth({"a": [1, {"b": 2}]}), json_depth(7)
    (3, 0)
    """
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, (list, tuple)) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return deepest


def _matches_dtype(value: Any, dtype: str) -> bool:
    """Whether one value read from a file's ``"data"`` list is of the array's dtype (``True`` is not a number)."""
    if dtype == "bool":
        return isinstance(value, bool)
    if dtype == "str":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if dtype.startswith("int"):
        return isinstance(value, int)
    return isinstance(value, (int, float))


def _to_json(value: Any) -> Any:
    """A codec's state with every numpy array encoded by ``encode_array``."""
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    return value


def _from_json(value: Any, where: str, at: str = "parameters") -> Any:
    """The inverse of ``_to_json``: every encoded array decoded by ``decode_array``.

    Each array's ``where`` names the file and the place in it, such as
    ``model.json (parameters.steps[1].state.coef)``.
    """
    if isinstance(value, dict):
        if "dtype" in value and "shape" in value:
            return decode_array(value, f"{where} ({at})")
        return {key: _from_json(item, where, f"{at}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item, where, f"{at}[{i}]") for i, item in enumerate(value)]
    return value


def _refuse_constant(name: str) -> None:
    """For ``json.loads(..., parse_constant=...)``: JSON's ``NaN``, ``Infinity`` and ``-Infinity`` are refused."""
    raise ValueError(f"the non-finite number {name} is not allowed in a model file")


def _finite_float(text: str) -> float:
    """For ``json.loads(..., parse_float=...)``: a number too large for a float64 (``1e999``) is refused, not read as infinity."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is too large for a float64")
    return number


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """Encode a numpy array as JSON that restores it exactly: dtype, shape and every bit.

    Small arrays (up to ``INLINE_LIMIT`` elements) keep readable numbers in
    ``"data"``, in row-major (C) order: Python writes the shortest decimal
    that parses back to the same float64, so nothing is lost. Larger arrays
    store their little-endian bytes, in row-major order, as base64 in
    ``"base64"``: parsing a million decimals is slow, decoding bytes is
    not. Strings are always written in ``"data"``. A matrix stored
    column-major (Fortran order, as scikit-learn's multiclass ``coef_``)
    also gets ``"order": "F"``: the memory layout decides how BLAS sums a
    matrix product, so keeping it keeps predictions bit-identical.

    Raises ValidationError, so that no file is written that
    ``decode_array`` would refuse, for:

    * a dtype outside ``ARRAY_DTYPES``: ``Cannot save an array of dtype complex128; supported: (...)``;
    * more than ``MAX_ARRAY_DIMENSIONS`` dimensions: ``... of 9 dimensions; the limit is 8.``;
    * more than ``MAX_ARRAY_ELEMENTS`` elements, counted as ``decode_array``
      counts them: ``... of shape (...): the limit is 10,000,000 elements.``;
    * a float array holding NaN or infinity: ``... holding NaN or infinite numbers.``;
    * a string longer than ``MAX_STRING_LENGTH``: ``... longer than 1,000 characters ...``.

    >>> encode_array(np.array([0.5, 2.0]))
    {'dtype': 'float64', 'shape': [2], 'data': [0.5, 2.0]}
    """
    raise NotImplementedError(
        "Part 1 (serialization): write encode_array(). Read notebooks/01_train_and_serialize.ipynb, section '2. Saving a model'. Check it with: make grade PART=1 SECTION=2"
    )


def decode_array(encoded: dict[str, Any], where: str) -> np.ndarray:
    """Rebuild the array that ``encode_array`` encoded, or raise ModelFormatError naming ``where``.

    Nothing is allocated before the shape is known to be small. Each check
    has its own message, which starts with ``where`` and then says:

    * ``array dtype 'object' is not one of (...)``: the dtype must be one of ``ARRAY_DTYPES``;
    * ``array shape must be a list of sizes``, ``array shape [...] is not a list of sizes``
      (each size a non-negative int; ``True`` is not a size);
    * ``array shape has 9 dimensions; the limit is 8``: at most ``MAX_ARRAY_DIMENSIONS``;
    * ``array shape [...] holds more than 10,000,000 elements``: the product of the
      sizes, computed with Python integers and a size of 0 counted as 1, is at most
      ``MAX_ARRAY_ELEMENTS``;
    * ``array order 'Z' is not 'C' or 'F'``: ``"order"``, when present;
    * ``array bytes are not valid base64``, ``array bytes do not fit dtype float64 and shape [...]``:
      ``"base64"`` must decode to exactly the shape's bytes (never for ``"str"``);
    * ``array data must be a list of 30 values for shape [1, 30]``: otherwise ``"data"`` must
      hold one value an element, row-major;
    * ``array data holds values that are not int64``: each value of the dtype's kind
      (``True`` is not a number);
    * ``array data holds a string longer than 1,000 characters``: ``MAX_STRING_LENGTH``;
    * ``array data holds numbers too large for int32``: ints must fit their dtype;
    * ``array holds NaN or infinite numbers``: floats must be finite (base64 bytes
      can hold any float).

    ``"order": "F"`` gives back a Fortran-ordered (column-major) array.

    >>> decode_array({"dtype": "float64", "shape": [2], "data": [0.5, 2.0]}, "model.json")
    array([0.5, 2. ])
    """
    raise NotImplementedError(
        "Part 1 (serialization): write decode_array(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )


def parameters_checksum(parameters: dict[str, Any]) -> str:
    """The sha256 hex digest of the canonical JSON of ``parameters``.

    Canonical means ``json.dumps(parameters, sort_keys=True, separators=(",", ":"))``,
    so any tool in any language can recompute it and check a file.

    >>> parameters_checksum({"b": 1, "a": [0.5]}) == parameters_checksum({"a": [0.5], "b": 1})
    True
    """
    raise NotImplementedError(
        "Part 1 (serialization): write parameters_checksum(). Read notebooks/01_train_and_serialize.ipynb, section '2. Saving a model'. Check it with: make grade PART=1 SECTION=2"
    )


def envelope_signature(envelope: dict[str, Any], signing_key: bytes | str) -> str:
    """The HMAC-SHA256 hex digest of the canonical JSON of ``envelope`` without its ``signature``.

    Canonical as in ``parameters_checksum``: ``json.dumps(..., sort_keys=True,
    separators=(",", ":"))`` of every field but ``"signature"``, so the
    signature covers the type, the version, the metadata, the checksum and
    the parameters. ``signing_key`` is a secret of at least one byte (a
    ``str`` is used as its UTF-8 bytes); without the key nobody can make a
    signature that matches, which is what a checksum cannot promise.
    Raises ValidationError ("A signing key must be a non-empty bytes or str
    secret.") for an empty key or one that is not bytes or str.

    >>> len(envelope_signature({"format_version": 1, "checksum": "ab"}, b"secret"))
    64
    """
    raise NotImplementedError(
        "Part 1 (serialization): write envelope_signature(). Read notebooks/01_train_and_serialize.ipynb, section '7. Signed model files'. Check it with: make grade PART=1 SECTION=7"
    )


def check_signature(envelope: dict[str, Any], signing_key: bytes | str, where: str) -> None:
    """Raise ModelFormatError, naming ``where``, unless ``envelope`` is signed with ``signing_key``.

    The key is checked first (``envelope_signature`` refuses a bad one with
    ValidationError). Then an envelope without a ``"signature"`` is refused
    ("<where>: the file is not signed, but a signing key was given."), and
    so is one whose signature is not the string ``envelope_signature(envelope,
    signing_key)`` ("<where>: the signature does not match; the file was
    changed or signed with another key."). Compare with ``hmac.compare_digest``, whose time
    does not depend on where two digests differ (it takes ASCII strings or
    bytes, so refuse a signature that is not ASCII before comparing).

    >>> check_signature({"checksum": "ab"}, b"secret", "model.json")
    Traceback (most recent call last):
    ...
    deployment.errors.ModelFormatError: model.json: the file is not signed, but a signing key was given.
    """
    raise NotImplementedError(
        "Part 1 (serialization): write check_signature(). Read notebooks/01_train_and_serialize.ipynb, section '7. Signed model files'. Check it with: make grade PART=1 SECTION=7"
    )


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk, so a rename or a new file in it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so readers see the old file or the new one, never a mix.

    A plain ``open(path, "w")`` empties the file first and fills it after:
    a crash in between leaves a half-written file where a good one used to
    be. The cure is the same everywhere (databases, package managers, git):
    write a temporary file in the same folder (``tempfile.mkstemp(dir=...,
    prefix="." + path.name + ".")``, hidden, so no reader mistakes a
    leftover for data), flush it and ``os.fsync`` it, then ``os.replace`` it
    over ``path`` (a rename within one file system is atomic) and
    ``fsync_folder`` the folder. If anything fails, remove the temporary
    file and let the error propagate. Part 4's registry writes with it too.

    >>> atomic_write_text(Path("notes.json"), '{"ok": true}\\n')
    >>> Path("notes.json").read_text()
    '{"ok": true}\\n'
    """
    raise NotImplementedError(
        "Part 1 (serialization): write atomic_write_text(). Read notebooks/01_train_and_serialize.ipynb, section '2. Saving a model'. Check it with: make grade PART=1 SECTION=2"
    )


def save_model(
    model: Any,
    filepath: str | os.PathLike,
    *,
    version: str = "1.0.0",
    metadata: dict[str, Any] | None = None,
    signing_key: bytes | str | None = None,
) -> Path:
    """Save a fitted model as a JSON model file and return its path.

    ``metadata`` may hold ``trained_at`` (a UTC datetime or ISO string;
    default: now), ``accuracy`` (a number) and any other JSON-ready keys.
    With ``signing_key``, the envelope also gets ``"signature"``:
    ``envelope_signature`` of the finished envelope under that key.
    The file is indented JSON (``json.dumps(..., indent=2)``), and the write
    is atomic (``atomic_write_text``): a crash leaves either the old file or
    the new one.

    Raises ValidationError, and writes nothing, for: an unfitted or
    unsupported model; a version that is not semantic (``validate_version``);
    an array ``encode_array`` refuses; metadata that JSON cannot hold (the
    message names the ``metadata``) or whose ``accuracy`` is not a finite
    number ("metadata['accuracy'] must be a finite number, got nan."); an
    envelope nested deeper than ``MAX_JSON_DEPTH`` ("... the metadata nests
    deeper than 32 levels."); a file that would be larger than
    ``MAX_FILE_BYTES`` ("... the file would be 17,066,871 bytes; the limit
    is 16,777,216."); a bad signing key (``envelope_signature``).
    Raises FileNotFoundError ("Cannot save <path>: the folder <folder> does
    not exist.") when the folder does not exist. So
    ``load_model`` reads back every file ``save_model`` writes.

    Steps: check the version; find the model's codec (``codec_for_model``)
    and take its state; encode every array in the state with
    ``encode_array``; fill in the metadata; compute the checksum; turn the
    whole envelope into text (signed, with a key) *before* touching the
    disk; then write the text with ``atomic_write_text``.

    >>> path = save_model(model, "models/cancer.json", version="1.0.0",
    ...                   metadata={"accuracy": 0.97})
    >>> path
    PosixPath('models/cancer.json')
    """
    raise NotImplementedError(
        "Part 1 (serialization): write save_model(). Read notebooks/01_train_and_serialize.ipynb, section '2. Saving a model'. Check it with: make grade PART=1 SECTION=2"
    )


def load_serialized(filepath: str | os.PathLike, *, signing_key: bytes | str | None = None) -> SerializedModel:
    """Read and check a model file's envelope without building the model.

    Raises FileNotFoundError ("Model file <path> does not exist.") for a
    missing file. Anything else wrong is a ModelFormatError whose message
    starts with the file's path and a colon, then says what is wrong, in
    this order of checks:

    * ``is not a file.`` (a folder, a device);
    * ``the file is 20,000,000 bytes; the limit is 16,777,216.``: the size is
      checked before reading (``MAX_FILE_BYTES``), and no more than the
      limit is ever read, should the file grow meanwhile;
    * ``the file is empty`` (nothing, or only white space);
    * ``the file is not UTF-8 text``;
    * ``the JSON nests deeper than 32 levels.`` (``MAX_JSON_DEPTH``): measure
      with ``json_depth``, and know that ``json.loads`` itself raises
      RecursionError on a document nested deeper than Python's recursion limit;
    * ``the JSON ends early; the file is truncated.`` when the text stops
      inside a value (``json.JSONDecodeError`` reports the end of the text,
      or a string that never ends: its ``msg`` starts with ``Unterminated
      string``), else ``not valid JSON at line L, column C (...)`` with the
      error's ``lineno``, ``colno`` and ``msg``;
    * ``the non-finite number NaN is not allowed in a model file``, ``the
      number 1e999 is too large for a float64``: JSON's ``NaN`` and
      ``Infinity``, and numbers that would read as infinity, are refused
      while parsing (``json.loads(..., parse_constant=_refuse_constant,
      parse_float=_finite_float)``);
    * ``a model file must hold a JSON object, got list``;
    * ``format_version must be a positive integer, got '1'``, or
      ``format_version 99 is newer than this code reads (1); upgrade the package.``
      (``FORMAT_VERSION``);
    * ``the field 'type' is missing``, ``the field 'parameters' must be a dict, got list``
      for each of ``type``, ``version``, ``metadata``, ``checksum`` (str, str,
      dict, str) and ``parameters`` (dict);
    * ``unknown model type 'os.system'; supported types are ...``: the type
      must be on the allow-list (``codec_for_type``);
    * the version's own message (``validate_version``), such as ``Version
      'one' is not a semantic version ...`` or ``... the limit is 128``;
    * ``metadata.trained_at must be an ISO 8601 timestamp string``;
    * ``the checksum does not match the parameters; the file was changed after it was saved.``;
    * ``the field 'signature' must be a str, got int``: a ``"signature"``,
      when present, must be a string;
    * with ``signing_key``, whatever ``check_signature`` raises; without a
      key, a signature is kept but cannot be checked.
    """
    raise NotImplementedError(
        "Part 1 (serialization): write load_serialized(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )


def build_model(serialized: SerializedModel, where: str) -> Any:
    """Build the model a checked envelope describes; ``where`` names its file in errors.

    Decode every encoded array in the parameters (a dict with ``"dtype"``
    and ``"shape"``) with ``decode_array`` (the given ``_from_json`` walks
    the parameters and does it), then look the type up in the allow-list
    (``codec_for_type``) and call ``codec.build(state, where)``, which
    checks that the arrays fit together (see ``model_codecs``). Nothing
    named in the file is ever imported or called. Useful when the envelope
    is already read, as Part 4's registry does after its own checks.

    >>> build_model(load_serialized("models/cancer.json"), "models/cancer.json")
    Pipeline(steps=[('scale', StandardScaler(...)), ('model', LogisticRegression(...))])
    """
    raise NotImplementedError(
        "Part 1 (serialization): write build_model(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )


def load_model(filepath: str | os.PathLike, *, signing_key: bytes | str | None = None) -> Any:
    """Load a model saved by ``save_model``: check the file, then rebuild the model.

    ``load_serialized`` checks the file (and its signature, with
    ``signing_key``); ``build_model`` rebuilds the model through the
    allow-list ``model_codecs.CODECS``.

    >>> model = load_model("models/cancer.json")
    >>> model.predict(X_test[:3])
    array([1, 0, 0])
    """
    raise NotImplementedError(
        "Part 1 (serialization): write load_model(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )
