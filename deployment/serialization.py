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
good model used to be.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
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
    "FORMAT_VERSION", "SerializedModel", "save_model", "load_model", "load_serialized", "build_model",
    "encode_array", "decode_array", "parameters_checksum", "envelope_signature", "check_signature",
    "atomic_write_text", "fsync_folder",
]

FORMAT_VERSION = 1
"""The newest file format this code writes and reads."""

INLINE_LIMIT = 10_000
"""Arrays up to this many elements are written as readable numbers; larger ones as base64 bytes."""

ARRAY_DTYPES = ("float64", "float32", "int64", "int32", "bool", "str")
"""The element types an encoded array may have."""


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


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """Encode a numpy array as JSON that restores it exactly: dtype, shape and every bit.

    Small arrays (up to ``INLINE_LIMIT`` elements) keep readable numbers in
    ``"data"``: Python writes the shortest decimal that parses back to the
    same float64, so nothing is lost. Larger arrays store their
    little-endian bytes as base64 in ``"base64"``: parsing a million
    decimals is slow, decoding bytes is not. A matrix stored column-major
    (Fortran order, as scikit-learn's multiclass ``coef_``) also gets
    ``"order": "F"``: the memory layout decides how BLAS sums a matrix
    product, so keeping it keeps predictions bit-identical.

    Raises ValidationError for a dtype outside ``ARRAY_DTYPES`` or a float
    array holding NaN or infinity.

    >>> encode_array(np.array([0.5, 2.0]))
    {'dtype': 'float64', 'shape': [2], 'data': [0.5, 2.0]}
    """
    raise NotImplementedError(
        "Part 1 (serialization): write encode_array(). Read notebooks/01_train_and_serialize.ipynb, section '2. Saving a model'. Check it with: make grade PART=1 SECTION=2"
    )


def decode_array(encoded: dict[str, Any], where: str) -> np.ndarray:
    """Rebuild the array that ``encode_array`` encoded, or raise ModelFormatError naming ``where``.

    Checks, each with its own message: the dtype is one of
    ``ARRAY_DTYPES``; the shape is a list of non-negative ints; base64
    bytes decode and fill the shape exactly; a ``"data"`` list holds as
    many values as the shape needs, each of the dtype's kind (``True`` is
    not a number). ``"order": "F"`` gives back a Fortran-ordered array.

    >>> decode_array({"dtype": "float64", "shape": [2], "data": [0.5, 2.0]}, "model.json")
    array([0.5, 2. ])
    """
    raise NotImplementedError(
        "Part 1 (serialization): write decode_array(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )


def _matches_dtype(value: Any, dtype: str) -> bool:
    raise NotImplementedError(
        "Part 1 (serialization): write _matches_dtype(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )


def _to_json(value: Any) -> Any:
    """A codec's state with every numpy array encoded."""
    raise NotImplementedError(
        "Part 1 (serialization): write _to_json(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )


def _from_json(value: Any, where: str) -> Any:
    """The inverse of ``_to_json``: every encoded array decoded."""
    raise NotImplementedError(
        "Part 1 (serialization): write _from_json(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )


def _refuse_constant(name: str) -> None:
    raise NotImplementedError(
        "Part 1 (serialization): write _refuse_constant(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )


def parameters_checksum(parameters: dict[str, Any]) -> str:
    """The sha256 hex digest of the canonical JSON of ``parameters``.

    Canonical means ``json.dumps(parameters, sort_keys=True, separators=(",", ":"))``,
    so any tool in any language can recompute it and check a file.
    """
    raise NotImplementedError(
        "Part 1 (serialization): write parameters_checksum(). Read notebooks/01_train_and_serialize.ipynb, section '2. Saving a model'. Check it with: make grade PART=1 SECTION=2"
    )


def envelope_signature(envelope: dict[str, Any], signing_key: bytes | str) -> str:
    """The HMAC-SHA256 hex digest of the canonical JSON of ``envelope`` without its ``signature``.

    Canonical as in ``parameters_checksum``: ``json.dumps(..., sort_keys=True,
    separators=(",", ":"))`` of every field but ``"signature"``, so the
    signature covers the type, the version, the metadata and (through the
    checksum) the parameters. ``signing_key`` is a secret of at least one
    byte (a ``str`` is used as its UTF-8 bytes); without the key nobody can
    make a signature that matches, which is what a checksum cannot promise.
    Raises ValidationError for an empty key or one that is not bytes or str.

    >>> len(envelope_signature({"format_version": 1, "checksum": "ab"}, b"secret"))
    64
    """
    raise NotImplementedError(
        "Part 1 (serialization): write envelope_signature(). Read notebooks/01_train_and_serialize.ipynb, section '7. Signed model files'. Check it with: make grade PART=1 SECTION=7"
    )


def check_signature(envelope: dict[str, Any], signing_key: bytes | str, where: str) -> None:
    """Raise ModelFormatError, naming ``where``, unless ``envelope`` is signed with ``signing_key``.

    An envelope without a ``"signature"`` is refused ("is not signed"), and
    so is one whose signature differs from ``envelope_signature(envelope,
    signing_key)`` ("signature does not match": the file was changed after
    it was signed, or signed with another key). Compare the two digests with
    ``hmac.compare_digest``, whose time does not depend on where they differ.

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
    The write is atomic (``atomic_write_text``): a crash leaves either the
    old file or the new one.

    Raises ValidationError for an unfitted or unsupported model, a version
    that is not semantic, or metadata that JSON cannot hold, and
    FileNotFoundError when the folder does not exist. Nothing is written
    unless every check passes.

    Steps: check the version (``validate_version``); find the model's codec
    (``codec_for_model``) and take its state; encode every array in the
    state with ``encode_array``; fill in the metadata; compute the
    checksum; turn the whole envelope into text *before* touching the disk;
    then write the text with ``atomic_write_text``.

    >>> path = save_model(model, "models/cancer.json", version="1.0.0",
    ...                   metadata={"accuracy": 0.97})
    """
    raise NotImplementedError(
        "Part 1 (serialization): write save_model(). Read notebooks/01_train_and_serialize.ipynb, section '2. Saving a model'. Check it with: make grade PART=1 SECTION=2"
    )


def load_serialized(filepath: str | os.PathLike, *, signing_key: bytes | str | None = None) -> SerializedModel:
    """Read and check a model file's envelope without building the model.

    Every field is checked and the checksum verified, so a model built
    from the result is the model that was saved. Raises FileNotFoundError
    for a missing file and ModelFormatError, naming the file and the
    problem, for anything else wrong with it: empty, not JSON, truncated,
    not an object, a missing or ill-typed field, a ``format_version`` newer
    than ``FORMAT_VERSION``, a type off the allow-list
    (``codec_for_type``), a bad version, or a checksum that does not match.
    JSON's ``NaN`` and ``Infinity`` are refused while parsing
    (``json.loads(..., parse_constant=...)``).

    A ``"signature"``, when present, must be a string. With ``signing_key``,
    the file must also pass ``check_signature``, after the checksum; without
    a key, a signature is read but cannot be checked.
    """
    raise NotImplementedError(
        "Part 1 (serialization): write load_serialized(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )


def build_model(serialized: SerializedModel, where: str) -> Any:
    """Build the model a checked envelope describes; ``where`` names its file in errors.

    Decode every encoded array in the parameters (a dict with ``"dtype"``
    and ``"shape"``) with ``decode_array``, then look the type up in the
    allow-list (``codec_for_type``) and call ``codec.build(state, where)``,
    which checks shapes and finiteness. Nothing named in the file is ever
    imported or called. Useful when the envelope is already read, as
    Part 4's registry does after its own checks.

    >>> build_model(load_serialized("models/cancer.json"), "models/cancer.json")
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
    """
    raise NotImplementedError(
        "Part 1 (serialization): write load_model(). Read notebooks/01_train_and_serialize.ipynb, section '3. Loading a model'. Check it with: make grade PART=1 SECTION=3"
    )
