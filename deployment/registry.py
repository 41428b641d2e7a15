"""Part 4: the model registry, where every trained model is kept, versioned and promoted.

The registry is a folder: an embedded, file-backed store that needs no
server, and that any new ``ModelRegistry`` on the same folder reads back
in full::

    root/
      .lock                        the file lock every writer holds
      cancer/                      one folder per model name
        stages.json                the stage history (and the rollback stack)
        1.0.0/model.json           one folder per version, in Part 1's format
        1.1.0/model.json
        2.0.0/model.json

Why this shape: listing versions is listing folders (no model file is
read); a version folder is written once and never changed (versions are
immutable); everything that does change (stages, history) lives in one
small JSON file per model that is replaced whole, atomically, under the
lock. Hidden entries ending in ``.tmp`` are a writer's temporary files:
readers skip them, and the next writer, holding the lock, deletes any that
a crashed writer left.

Stages: a version is in ``"none"`` when registered; ``promote_model`` moves
it to ``"staging"`` or ``"production"``; each of those two holds at most
one version; a production version that is replaced goes to
``"archived"``, and ``rollback`` brings it back. The stage file::

    {
      "format_version": 1,
      "previous_production": ["1.0.0"],
      "history": [
        {"version": "1.0.0", "from_stage": "none", "to_stage": "production",
         "timestamp": "2026-01-05T09:00:00Z", "reason": "first release"},
        {"version": "1.0.0", "from_stage": "production", "to_stage": "archived",
         "timestamp": "2026-01-12T09:00:00Z", "reason": "replaced by 1.1.0"},
        {"version": "1.1.0", "from_stage": "none", "to_stage": "production",
         "timestamp": "2026-01-12T09:00:00Z", "reason": "better recall"}
      ]
    }

``history`` holds every transition, oldest first, and is the one record of
stages: a version's stage is the ``to_stage`` of its last transition
(``"none"`` if it has none). ``previous_production`` is what ``rollback``
goes back to, newest last; the history alone cannot tell it, because a
version promoted again after a rollback looks like any other promotion.

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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from .errors import ModelFormatError, ModelNotFoundError, ValidationError
from .serialization import (
    SerializedModel,
    atomic_write_text,
    build_model,
    fsync_folder,
    load_serialized,
    save_model,
    utc_timestamp,
)
from .versions import validate_version, version_key

__all__ = ["ModelRegistry", "NAME_PATTERN", "STAGES", "VERSION_STAGES"]

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
"""A model name: lower-case letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit; 100 at most.

So a name is always one plain folder inside the registry: no ``/``, no
``..``, no absolute path, no hidden file, and no two names that differ only
in case (which some file systems would merge). Check with
``NAME_PATTERN.fullmatch(name)``.
"""

STAGES = ("staging", "production")
"""The stages a version can be promoted to; each holds at most one version."""

VERSION_STAGES = ("none",) + STAGES + ("archived",)
"""Every stage a version can be in: ``none`` when registered, ``archived`` once replaced in production."""

MODEL_FILE = "model.json"
STATE_FILE = "stages.json"
LOCK_FILE = ".lock"
STATE_FORMAT_VERSION = 1
HISTORY_KEYS = ("version", "from_stage", "to_stage", "timestamp", "reason")
"""The keys of one transition in the history, in the order the file shows them."""


def _now_utc() -> datetime:
    return datetime.now(timezone.utc)


def _check_name(name: Any) -> str:
    raise NotImplementedError(
        "Part 4 (the model registry): write _check_name(). Read notebooks/04_model_registry.ipynb, section '2. Registering a version'. Check it with: make grade PART=4 SECTION=2"
    )


def _check_reason(reason: Any) -> str | None:
    raise NotImplementedError(
        "Part 4 (the model registry): write _check_reason(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
    )


def _parse_timestamp(text: Any, where: str) -> datetime:
    raise NotImplementedError(
        "Part 4 (the model registry): write _parse_timestamp(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
    )


def _current_stages(history: list[dict[str, Any]]) -> dict[str, str]:
    """Each version's stage after the whole history: the ``to_stage`` of its last transition."""
    raise NotImplementedError(
        "Part 4 (the model registry): write _current_stages(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
    )


def _holder(stages: dict[str, str], stage: str) -> str | None:
    raise NotImplementedError(
        "Part 4 (the model registry): write _holder(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
    )


def _move(history: list[dict[str, Any]], stages: dict[str, str], version: str, to_stage: str,
          reason: str | None, when: str) -> None:
    """Put ``version`` in ``to_stage``: update ``stages`` and append the transition to ``history``."""
    raise NotImplementedError(
        "Part 4 (the model registry): write _move(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
    )


def _check_state(document: Any, where: str) -> dict[str, Any]:
    """The stage file's content, every field checked, or ModelFormatError naming the file."""
    raise NotImplementedError(
        "Part 4 (the model registry): write _check_state(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
    )


class ModelRegistry:
    """Every version of every model, with its stage, kept in one folder.

    ``root`` is created if missing, with the registry's lock file
    ``root/.lock``. ``clock`` returns the current time as a timezone-aware
    UTC datetime (default: the system clock); tests and notebooks pass a
    fixed one so timestamps are reproducible. ``lock_timeout_s`` bounds
    how long a writer waits for another one (a ``filelock.Timeout`` after
    that).

    Writes (``register_model``, ``promote_model``, ``rollback``) hold
    ``FileLock(root / ".lock", timeout=lock_timeout_s)`` for the whole
    read-check-write, so writers in several processes lose nothing. Under
    the lock they first delete the hidden ``*.tmp`` leftovers of a crashed
    writer in ``root`` and in the model's folder (safe: every temporary
    file is made under the lock, so any that exists now is a leftover).
    Reads take no lock: a version folder never changes once written, and
    the stage file is replaced whole (``atomic_write_text``), so a reader
    sees the state before a write or after it.

    Every method checks ``name`` first (``NAME_PATTERN``; ValidationError
    otherwise), so no name can reach a folder outside ``root``.
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
        (self.root / LOCK_FILE).touch(exist_ok=True)
        self.clock = clock or _now_utc
        self.lock_timeout_s = lock_timeout_s

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    def _model_folder(self, name: str) -> Path:
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry._model_folder(). Read notebooks/04_model_registry.ipynb, section '2. Registering a version'. Check it with: make grade PART=4 SECTION=2"
        )

    def _existing_folder(self, name: str) -> Path:
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry._existing_folder(). Read notebooks/04_model_registry.ipynb, section '2. Registering a version'. Check it with: make grade PART=4 SECTION=2"
        )

    @contextmanager
    def _writing(self, name: str) -> Iterator[Path]:
        """Hold the registry's lock, clear a crashed writer's leftovers, and give the model's folder."""
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry._writing(). Read notebooks/04_model_registry.ipynb, section '7. Safe on disk: atomic writes and locks'. Check it with: make grade PART=4 SECTION=7"
        )

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
        ``1.0.0+b`` next to ``1.0.0+a``: ``version_key`` ignores build
        metadata) raises ValidationError. ``metadata`` holds the model's own
        facts (``accuracy``, ``trained_at``: default the registry's clock)
        and any JSON-ready keys of yours, such as the training data's
        fingerprint or the parent version; the registry adds
        ``registered_at`` (``utc_timestamp`` of the clock). The new version
        starts in stage ``"none"`` (nothing is added to the stage file).

        Raises ValidationError for a bad name or version, metadata that is
        not a dict, an existing version, or a model or metadata that Part
        1's ``save_model`` refuses. A refused registration leaves no trace:
        not even the model's folder when it would have been the first
        version.

        Steps: check the name, the version and that ``metadata`` is a dict
        or None (no disk touched yet); then,
        holding the lock (see the class docstring), refuse an existing
        version; make a hidden temporary folder in ``root``
        (``tempfile.mkdtemp(dir=root, prefix=".", suffix=".tmp")``) and
        ``save_model`` into ``<temp>/<version>/model.json`` (this is where an
        unfitted model is refused: remove the temporary folder in a
        ``finally``); then commit with one ``os.rename``: of
        ``<temp>/<version>`` to ``root/<name>/<version>`` when the model's
        folder exists, else of ``<temp>`` itself to ``root/<name>``, so a new
        model's folder appears together with its first version; last,
        ``fsync_folder`` the model's folder and ``root``. A crash at any
        moment leaves either no new version or the complete one.

        >>> registry.register_model("cancer", "1.1.0", model,
        ...                         metadata={"accuracy": 0.97, "parent": "1.0.0"})
        PosixPath('registry/cancer/1.1.0/model.json')
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.register_model(). Read notebooks/04_model_registry.ipynb, section '2. Registering a version'. Check it with: make grade PART=4 SECTION=2"
        )

    def list_models(self) -> list[str]:
        """The names of the registered models, sorted.

        The folders in ``root`` whose names match ``NAME_PATTERN`` (so the
        lock file and hidden temporary folders are skipped); no file is read.

        >>> registry.list_models()
        ['cancer', 'wine']
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.list_models(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def list_versions(self, name: str) -> list[str]:
        """The versions of ``name`` in semantic-version order, oldest first.

        Numbers sort as numbers (``1.10.0`` after ``1.9.0``) and a
        pre-release before its release (``2.0.0-rc.1`` before ``2.0.0``):
        sort with ``key=version_key``. Only folder names are read
        (``os.scandir`` of the model's folder, skipping files such as
        ``stages.json`` and hidden entries), never a model file, so listing
        thousands of versions takes milliseconds. Raises
        ModelNotFoundError for a name that was never registered and
        ModelFormatError, naming it, for a folder that is not a version.

        >>> registry.list_versions("cancer")
        ['1.0.0', '1.1.0', '2.0.0-rc.1', '2.0.0']
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.list_versions(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def resolve(self, name: str, version: str = "latest") -> str:
        """The exact version that ``version`` names: itself, ``"latest"``, ``"staging"`` or ``"production"``.

        ``"latest"`` is the highest semantic version (the last of
        ``list_versions``); a stage name is looked up in the stage file
        (checked as ``get_stage_history`` checks it), and its version's
        folder must exist (else ModelFormatError naming the stage file); an
        exact version must be a folder. No model file is read. Raises
        ModelNotFoundError for an unknown name or version or an empty
        stage, ValidationError for anything that is neither a version nor
        one of those words (``"none"`` and ``"archived"`` included: each may
        hold many versions).

        >>> registry.resolve("cancer", "production")
        '1.1.0'
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.resolve(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def load_model(self, name: str, version: str = "latest") -> Any:
        """Load a model: a version (``"1.1.0"``), ``"latest"``, ``"staging"`` or ``"production"``.

        Steps: ``resolve`` the version, then read that one model file
        (``root/<name>/<version>/model.json``), checked as Part 1's
        ``load_serialized`` checks it, plus one check of the registry's own:
        the version written in the file must be its folder's name, so a
        file copied into another version's folder is refused, not served
        under the wrong version. Then build the model from that envelope
        with Part 1's ``build_model(serialized, str(path))``: Part 1's
        ``load_model`` would read and check the file a second time. Raises ModelNotFoundError for an unknown
        name or version or an empty stage, and ModelFormatError, naming
        the file, for a damaged, hand-edited or misplaced file.

        >>> model = registry.load_model("cancer", "production")
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.load_model(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def get_metadata(self, name: str, version: str = "latest") -> dict[str, Any]:
        """The metadata stored with a version: ``registered_at``, ``trained_at``, ``accuracy``, your keys.

        ``version`` is read, and the file checked, as in ``load_model``;
        the model itself is not built. Timestamps come back as they are
        stored: ISO 8601 strings in UTC.

        >>> registry.get_metadata("cancer", "1.1.0")["accuracy"]
        0.972
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.get_metadata(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def _checked_model_file(self, name: str, version: str) -> tuple[Path, SerializedModel]:
        """The model file of the version ``version`` names, and its checked envelope."""
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry._checked_model_file(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def _read_state(self, name: str) -> dict[str, Any]:
        """The model's stage file, checked; an empty one if no version was ever promoted."""
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry._read_state(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
        )

    def _write_state(self, name: str, state: dict[str, Any]) -> None:
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry._write_state(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
        )

    def get_stages(self, name: str) -> dict[str, str]:
        """Every version of ``name`` with its current stage, in semantic-version order.

        The versions come from ``list_versions``; each one's stage is the
        ``to_stage`` of its last transition in the stage file's history, or
        ``"none"``. Raises ModelNotFoundError for an unknown name, and
        ModelFormatError for a damaged stage file (checked as in
        ``get_stage_history``).

        >>> registry.get_stages("cancer")
        {'1.0.0': 'archived', '1.1.0': 'production', '2.0.0': 'staging'}
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.get_stages(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
        )

    def promote_model(self, name: str, version: str, stage: str, *, reason: str | None = None) -> None:
        """Move ``version`` of ``name`` to ``stage`` (``"staging"`` or ``"production"``).

        Each stage holds at most one version: the version that held
        ``staging`` goes back to ``"none"``; the version that held
        ``production`` goes to ``"archived"`` and is pushed on
        ``previous_production`` (so ``rollback`` can bring it back); the
        promoted version leaves ``previous_production`` if it was there.
        Every move is one transition appended to the history (the one that
        makes room first, with the reason ``"replaced by <version>"``), all
        with the same timestamp (``utc_timestamp`` of the clock) and
        ``reason`` a string or None.

        Raises ValidationError for another stage, a reason that is not a
        string or None, or a version already in ``stage``;
        ModelNotFoundError for an unknown name or version; and
        ModelFormatError for a damaged stage file. A refused promotion
        changes nothing. Steps: check the stage, version and reason; then,
        holding the lock, read the stage file, check, change, and write it
        back whole with ``atomic_write_text``.

        >>> registry.promote_model("cancer", "1.1.0", "production", reason="+2 points of accuracy")
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.promote_model(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
        )

    def get_stage_history(self, name: str) -> list[dict[str, Any]]:
        """Every stage transition of ``name``, oldest first.

        Each is ``{"version", "from_stage", "to_stage", "timestamp", "reason"}``
        with ``timestamp`` a timezone-aware UTC datetime and ``reason``
        a string or None: an empty list if no version was ever promoted.
        Raises ModelNotFoundError for an unknown name.

        The stage file is checked on every read, and anything wrong is a
        ModelFormatError naming the file: not JSON, not an object, a
        ``format_version`` other than 1, ``previous_production`` not a list
        of strings, a transition without exactly those five keys, a stage
        outside ``VERSION_STAGES``, a timestamp without a time zone, a
        ``from_stage`` that is not the version's stage at that point of the
        history, or more than one version in ``staging`` or ``production``
        at the end.

        >>> registry.get_stage_history("cancer")[0]
        {'version': '1.0.0', 'from_stage': 'none', 'to_stage': 'staging',
         'timestamp': datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.timezone.utc), 'reason': None}
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.get_stage_history(). Read notebooks/04_model_registry.ipynb, section '5. History and rollback'. Check it with: make grade PART=4 SECTION=5"
        )

    def rollback(self, name: str, *, reason: str | None = "rollback") -> str:
        """Put the previous production version of ``name`` back in production; return it.

        The version on top of ``previous_production`` is popped and moved
        to ``"production"``; the current production version goes to
        ``"archived"`` (not pushed: rolling back again goes one step
        further back, never forward to the version just rolled back). Both
        transitions carry ``reason``. Holds the lock, as ``promote_model``
        does. Raises ModelNotFoundError for an unknown name or when no
        earlier production version is left to go back to, ValidationError
        for a reason that is not a string or None.

        >>> registry.rollback("cancer")
        '1.0.0'
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.rollback(). Read notebooks/04_model_registry.ipynb, section '5. History and rollback'. Check it with: make grade PART=4 SECTION=5"
        )
