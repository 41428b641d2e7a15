"""Part 4: the model registry, where every trained model is kept, versioned and promoted.

The registry is a folder: an embedded, file-backed store that needs no
server, and that any new ``ModelRegistry`` on the same folder reads back
in full::

    root/
      cancer/                      one folder per model name
        .lock                      the file lock every writer holds
        stages.json                current stage of each version + the history
        1.0.0/model.json           one folder per version, in Part 1's format
        1.1.0/model.json
        2.0.0/model.json

Why this shape: listing versions is listing folders (no model file is
read), a version folder is written once and never changed (versions are
immutable), and everything that does change (stages, history) lives in one
small JSON file that is replaced whole, atomically, under a lock.

Stages: a version is in ``"none"`` when registered; ``promote_model`` moves
it to ``"staging"`` or ``"production"``; each of those two holds at most
one version; a production version that is replaced goes to
``"archived"``, and ``rollback`` brings it back. The stage file::

    {
      "format_version": 1,
      "name": "cancer",
      "stages": {"1.0.0": "archived", "1.1.0": "production"},
      "previous_production": ["1.0.0"],
      "history": [
        {"version": "1.1.0", "from_stage": "none", "to_stage": "production",
         "timestamp": "2026-01-05T09:00:00Z", "reason": "better recall"}
      ]
    }

``stages`` lists every version that is not in ``"none"``;
``previous_production`` is what ``rollback`` goes back to, newest last;
``history`` holds every transition, oldest first.

>>> registry = ModelRegistry("build/registry")
>>> registry.register_model("cancer", "1.0.0", model, metadata={"accuracy": 0.95})
>>> registry.promote_model("cancer", "1.0.0", "production", reason="beats the baseline")
>>> registry.load_model("cancer", "production").predict(X[:3])
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from .serialization import atomic_write_text, fsync_folder
from .errors import ModelFormatError, ModelNotFoundError, ValidationError
from .serialization import load_model as load_model_file
from .serialization import load_serialized, save_model, utc_timestamp
from .versions import validate_version, version_key

__all__ = ["ModelRegistry", "NAME_PATTERN", "STAGES", "VERSION_STAGES"]

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
"""A model name: lower-case letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit; 100 at most.

So a name is always one plain folder inside the registry: no ``/``, no
``..``, no absolute path, no hidden file, and no two names that differ only
in case (which some file systems would merge).
"""

STAGES = ("staging", "production")
"""The stages a version can be promoted to; each holds at most one version."""

VERSION_STAGES = ("none",) + STAGES + ("archived",)
"""Every stage a version can be in: ``none`` when registered, ``archived`` once replaced in production."""

MODEL_FILE = "model.json"
STATE_FILE = "stages.json"
LOCK_FILE = ".lock"
STATE_FORMAT_VERSION = 1


def _now_utc() -> datetime:
    return datetime.now(timezone.utc)


class ModelRegistry:
    """Every version of every model, with its stage, kept in one folder.

    ``root`` is created if missing. ``clock`` returns the current time as a
    timezone-aware UTC datetime (default: the system clock); tests and
    notebooks pass a fixed one so timestamps are reproducible.
    ``lock_timeout_s`` bounds how long a writer waits for another one
    (a ``filelock.Timeout`` after that).

    Reads take no lock: a version folder never changes once written, and
    the stage file is replaced whole, so a reader sees the state before a
    write or after it. Writes (register, promote, rollback) hold the
    model's file lock for the whole read-modify-write, so writers in
    several processes lose nothing.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        clock: Callable[[], datetime] | None = None,
        lock_timeout_s: float = 60.0,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.clock = clock or _now_utc
        self.lock_timeout_s = lock_timeout_s

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"


    def register_model(
        self,
        name: str,
        version: str,
        model: Any,
        metadata: dict[str, Any] | None = None,
    ) -> Path:
        """Store a fitted model as version ``version`` of ``name``; return its model file's path.

        ``version`` is a semantic version (``"1.0.0"``, ``"2.1.0-rc.1"``).
        Versions are immutable: registering a version that exists (or one
        that differs from an existing one only in build metadata, such as
        ``1.0.0+b`` next to ``1.0.0+a``) raises ValidationError.
        ``metadata`` holds the model's own facts (``accuracy``,
        ``trained_at``: default now) and any JSON-ready keys of yours, such
        as the training data's fingerprint or the parent version; the
        registry adds ``registered_at`` (UTC, from the registry's clock).
        The new version starts in stage ``"none"``.

        Atomic: the version is written in full into a hidden temporary
        folder, then renamed into place, so a crash leaves the registry as
        it was. Raises ValidationError for a bad name or version, or a
        model ``save_model`` refuses.

        >>> registry.register_model("cancer", "1.1.0", model,
        ...                         metadata={"accuracy": 0.97, "parent": "1.0.0"})
        PosixPath('registry/cancer/1.1.0/model.json')
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.register_model(). Read notebooks/04_model_registry.ipynb, section '2. Registering a version'."
        )


    def list_models(self) -> list[str]:
        """The names of the registered models, sorted.

        >>> registry.list_models()
        ['cancer', 'wine']
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.list_models(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'."
        )

    def list_versions(self, name: str) -> list[str]:
        """The versions of ``name`` in semantic-version order, oldest first.

        Numbers sort as numbers (``1.10.0`` after ``1.9.0``) and a
        pre-release before its release (``2.0.0-rc.1`` before ``2.0.0``).
        Only folder names are read, never a model file, so listing
        thousands of versions takes milliseconds. Raises
        ModelNotFoundError for a name that was never registered and
        ModelFormatError for a folder that is not a version.

        >>> registry.list_versions("cancer")
        ['1.0.0', '1.1.0', '2.0.0-rc.1', '2.0.0']
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.list_versions(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'."
        )

    def resolve(self, name: str, version: str = "latest") -> str:
        """The exact version that ``version`` names: itself, ``"latest"``, ``"staging"`` or ``"production"``.

        ``"latest"`` is the highest semantic version. Raises
        ModelNotFoundError for an unknown name or version or an empty
        stage, ValidationError for anything that is neither a version nor
        one of those words.

        >>> registry.resolve("cancer", "production")
        '1.1.0'
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.resolve(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'."
        )

    def load_model(self, name: str, version: str = "latest") -> Any:
        """Load a model: a version (``"1.1.0"``), ``"latest"``, ``"staging"`` or ``"production"``.

        Only the one model file is read (and checked, as Part 1's
        ``load_model`` does). Raises ModelNotFoundError for an unknown
        name or version or an empty stage, and ModelFormatError, naming
        the file, for a damaged or hand-edited file.

        >>> model = registry.load_model("cancer", "production")
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.load_model(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'."
        )

    def get_metadata(self, name: str, version: str = "latest") -> dict[str, Any]:
        """The metadata stored with a version: ``registered_at``, ``trained_at``, ``accuracy``, your keys.

        ``version`` is read as in ``load_model``. Timestamps come back as
        they are stored: ISO 8601 strings in UTC.

        >>> registry.get_metadata("cancer", "1.1.0")["accuracy"]
        0.972
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.get_metadata(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'."
        )


    def get_stages(self, name: str) -> dict[str, str]:
        """Every version of ``name`` with its current stage, in semantic-version order.

        >>> registry.get_stages("cancer")
        {'1.0.0': 'archived', '1.1.0': 'production', '2.0.0': 'staging'}
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.get_stages(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'."
        )

    def promote_model(self, name: str, version: str, stage: str, *, reason: str | None = None) -> None:
        """Move ``version`` of ``name`` to ``stage`` (``"staging"`` or ``"production"``).

        Each stage holds at most one version: the version that held
        ``staging`` goes back to ``"none"``; the version that held
        ``production`` goes to ``"archived"`` (and ``rollback`` can bring it
        back). Every move is recorded in the history with its time and
        ``reason``. Raises ModelNotFoundError for an unknown name or
        version, ValidationError for another stage or a version already
        in ``stage``.

        >>> registry.promote_model("cancer", "1.1.0", "production", reason="+2 points of accuracy")
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.promote_model(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'."
        )

    def get_stage_history(self, name: str) -> list[dict[str, Any]]:
        """Every stage transition of ``name``, oldest first.

        Each is ``{"version", "from_stage", "to_stage", "timestamp", "reason"}``
        with ``timestamp`` a timezone-aware UTC datetime and ``reason``
        a string or None. Raises ModelNotFoundError for an unknown name.

        >>> registry.get_stage_history("cancer")[0]
        {'version': '1.0.0', 'from_stage': 'none', 'to_stage': 'staging',
         'timestamp': datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.timezone.utc), 'reason': None}
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.get_stage_history(). Read notebooks/04_model_registry.ipynb, section '5. History and rollback'."
        )

    def rollback(self, name: str, *, reason: str | None = "rollback") -> str:
        """Put the previous production version of ``name`` back in production; return it.

        The current production version goes to ``"archived"``. Rolling
        back again goes one step further back (to the version before the
        previous one), never forward to the version just rolled back.
        Raises ModelNotFoundError when no earlier production version is
        left to go back to.

        >>> registry.rollback("cancer")
        '1.0.0'
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.rollback(). Read notebooks/04_model_registry.ipynb, section '5. History and rollback'."
        )
