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


### BEGIN SOLUTION part=4 section="2. Registering a version"
def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValidationError(
            f"Model name {name!r} is not allowed: use lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (at most 100 characters)."
        )
    return name
### END SOLUTION


### BEGIN SOLUTION part=4 section="4. Promoting through stages"
def _parse_timestamp(text: Any, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ModelFormatError(f"{where}: timestamp {text!r} is not ISO 8601.") from None
    if moment.tzinfo is None:
        raise ModelFormatError(f"{where}: timestamp {text!r} has no time zone.")
    return moment.astimezone(timezone.utc)


def _empty_state(name: str) -> dict[str, Any]:
    return {"format_version": STATE_FORMAT_VERSION, "name": name, "stages": {},
            "previous_production": [], "history": []}


def _check_state(document: Any, where: str) -> dict[str, Any]:
    """The stage file's content, every field checked, or ModelFormatError naming the file."""
    if not isinstance(document, dict):
        raise ModelFormatError(f"{where}: must hold a JSON object, got {type(document).__name__}.")
    if document.get("format_version") != STATE_FORMAT_VERSION:
        raise ModelFormatError(
            f"{where}: format_version must be {STATE_FORMAT_VERSION}, got {document.get('format_version')!r}."
        )
    stages, previous, history = document.get("stages"), document.get("previous_production"), document.get("history")
    if not isinstance(stages, dict) or not all(
        isinstance(v, str) and s in VERSION_STAGES[1:] for v, s in stages.items()
    ):
        raise ModelFormatError(f"{where}: 'stages' must map versions to one of {VERSION_STAGES[1:]}.")
    for stage in STAGES:
        holders = [v for v, s in stages.items() if s == stage]
        if len(holders) > 1:
            raise ModelFormatError(f"{where}: {len(holders)} versions are in {stage}; at most one may be.")
    if not isinstance(previous, list) or not all(isinstance(v, str) for v in previous):
        raise ModelFormatError(f"{where}: 'previous_production' must be a list of versions.")
    if not isinstance(history, list):
        raise ModelFormatError(f"{where}: 'history' must be a list of transitions.")
    keys = {"version", "from_stage", "to_stage", "timestamp", "reason"}
    for i, entry in enumerate(history):
        if not isinstance(entry, dict) or set(entry) != keys:
            raise ModelFormatError(f"{where}: history[{i}] must have exactly the keys {sorted(keys)}.")
        if not isinstance(entry["version"], str) or not isinstance(entry["reason"], (str, type(None))):
            raise ModelFormatError(f"{where}: history[{i}] needs a version string and a reason string or null.")
        if entry["from_stage"] not in VERSION_STAGES or entry["to_stage"] not in VERSION_STAGES:
            raise ModelFormatError(f"{where}: history[{i}] names a stage that is not one of {VERSION_STAGES}.")
        _parse_timestamp(entry["timestamp"], f"{where}: history[{i}]")
    return document
### END SOLUTION


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

    ### BEGIN SOLUTION part=4 section="2. Registering a version"
    def _model_folder(self, name: str) -> Path:
        return self.root / _check_name(name)

    def _existing_folder(self, name: str) -> Path:
        folder = self._model_folder(name)
        if not folder.is_dir():
            raise ModelNotFoundError(f"Model {name!r} is not in the registry at {self.root}.")
        return folder

    def _lock(self, name: str) -> FileLock:
        folder = self._model_folder(name)
        folder.mkdir(exist_ok=True)
        return FileLock(folder / LOCK_FILE, timeout=self.lock_timeout_s)
    ### END SOLUTION

    ### BEGIN SOLUTION part=4 section="4. Promoting through stages"
    def _read_state(self, name: str) -> dict[str, Any]:
        path = self._model_folder(name) / STATE_FILE
        if not path.exists():
            return _empty_state(name)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{path}: not valid JSON ({exc}).") from None
        return _check_state(document, str(path))

    def _write_state(self, name: str, state: dict[str, Any]) -> None:
        path = self._model_folder(name) / STATE_FILE
        atomic_write_text(path, json.dumps(state, indent=2) + "\n")

    @staticmethod
    def _move(state: dict[str, Any], version: str, to_stage: str, reason: str | None, when: str) -> None:
        """Put ``version`` in ``to_stage`` and record the transition in the history."""
        from_stage = state["stages"].get(version, "none")
        if to_stage == "none":
            state["stages"].pop(version, None)
        else:
            state["stages"][version] = to_stage
        state["history"].append({
            "version": version, "from_stage": from_stage, "to_stage": to_stage,
            "timestamp": when, "reason": reason,
        })

    @staticmethod
    def _holder(state: dict[str, Any], stage: str) -> str | None:
        return next((v for v, s in state["stages"].items() if s == stage), None)
    ### END SOLUTION

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
        ### BEGIN SOLUTION part=4 section="2. Registering a version"
        validate_version(version)
        folder = self._model_folder(name)
        metadata = dict(metadata or {})
        with self._lock(name):
            self._remove_leftovers(folder)
            for existing in self.list_versions(name):
                if version_key(existing) == version_key(version):
                    raise ValidationError(
                        f"Version {version} of model {name!r} already exists as {existing}; versions are immutable."
                    )
            now = self.clock()
            metadata.setdefault("trained_at", now)
            metadata["registered_at"] = utc_timestamp(now)
            temp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{version}.", suffix=".tmp"))
            try:
                save_model(model, temp / MODEL_FILE, version=version, metadata=metadata)
                fsync_folder(temp)
                os.rename(temp, folder / version)
            except BaseException:
                shutil.rmtree(temp, ignore_errors=True)
                raise
            fsync_folder(folder)
        return folder / version / MODEL_FILE
        ### END SOLUTION

    ### BEGIN SOLUTION part=4 section="7. Safe on disk: atomic writes and locks"
    @staticmethod
    def _remove_leftovers(folder: Path) -> None:
        """Delete temporary folders a crashed writer left (safe: we hold the lock, no one else writes)."""
        for entry in folder.iterdir():
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
    ### END SOLUTION

    def list_models(self) -> list[str]:
        """The names of the registered models, sorted.

        >>> registry.list_models()
        ['cancer', 'wine']
        """
        ### BEGIN SOLUTION part=4 section="3. Listing and loading versions"
        return sorted(e.name for e in os.scandir(self.root) if e.is_dir() and NAME_PATTERN.fullmatch(e.name))
        ### END SOLUTION

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
        ### BEGIN SOLUTION part=4 section="3. Listing and loading versions"
        folder = self._existing_folder(name)
        versions = []
        for entry in os.scandir(folder):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            try:
                versions.append(validate_version(entry.name))
            except ValidationError:
                raise ModelFormatError(f"{entry.path}: a folder in a model's folder must be named by a version.") from None
        return sorted(versions, key=version_key)
        ### END SOLUTION

    def resolve(self, name: str, version: str = "latest") -> str:
        """The exact version that ``version`` names: itself, ``"latest"``, ``"staging"`` or ``"production"``.

        ``"latest"`` is the highest semantic version. Raises
        ModelNotFoundError for an unknown name or version or an empty
        stage, ValidationError for anything that is neither a version nor
        one of those words.

        >>> registry.resolve("cancer", "production")
        '1.1.0'
        """
        ### BEGIN SOLUTION part=4 section="3. Listing and loading versions"
        if version == "latest":
            versions = self.list_versions(name)
            if not versions:
                raise ModelNotFoundError(f"Model {name!r} has no versions yet.")
            return versions[-1]
        if version in STAGES:
            self._existing_folder(name)
            state = self._read_state(name)
            holder = self._holder(state, version)
            if holder is None:
                raise ModelNotFoundError(f"Model {name!r} has no version in {version}.")
            if not (self._model_folder(name) / holder).is_dir():
                raise ModelFormatError(
                    f"{self._model_folder(name) / STATE_FILE}: {version} names version {holder}, which does not exist."
                )
            return holder
        if not isinstance(version, str) or version in VERSION_STAGES:
            raise ValidationError(
                f"Cannot load {version!r}: give a version such as '1.0.0', 'latest', 'staging' or 'production'."
            )
        validate_version(version)
        if not (self._existing_folder(name) / version).is_dir():
            raise ModelNotFoundError(f"Model {name!r} has no version {version}.")
        return version
        ### END SOLUTION

    def load_model(self, name: str, version: str = "latest") -> Any:
        """Load a model: a version (``"1.1.0"``), ``"latest"``, ``"staging"`` or ``"production"``.

        Only the one model file is read (and checked, as Part 1's
        ``load_model`` does). Raises ModelNotFoundError for an unknown
        name or version or an empty stage, and ModelFormatError, naming
        the file, for a damaged or hand-edited file.

        >>> model = registry.load_model("cancer", "production")
        """
        ### BEGIN SOLUTION part=4 section="3. Listing and loading versions"
        exact = self.resolve(name, version)
        path = self._model_folder(name) / exact / MODEL_FILE
        self._check_envelope_version(path, exact)
        return load_model_file(path)
        ### END SOLUTION

    def get_metadata(self, name: str, version: str = "latest") -> dict[str, Any]:
        """The metadata stored with a version: ``registered_at``, ``trained_at``, ``accuracy``, your keys.

        ``version`` is read as in ``load_model``. Timestamps come back as
        they are stored: ISO 8601 strings in UTC.

        >>> registry.get_metadata("cancer", "1.1.0")["accuracy"]
        0.972
        """
        ### BEGIN SOLUTION part=4 section="3. Listing and loading versions"
        exact = self.resolve(name, version)
        path = self._model_folder(name) / exact / MODEL_FILE
        return dict(self._check_envelope_version(path, exact).metadata)
        ### END SOLUTION

    ### BEGIN SOLUTION part=4 section="3. Listing and loading versions"
    @staticmethod
    def _check_envelope_version(path: Path, version: str):
        serialized = load_serialized(path)
        if serialized.version != version:
            raise ModelFormatError(f"{path}: the file holds version {serialized.version}, but its folder says {version}.")
        return serialized
    ### END SOLUTION

    def get_stages(self, name: str) -> dict[str, str]:
        """Every version of ``name`` with its current stage, in semantic-version order.

        >>> registry.get_stages("cancer")
        {'1.0.0': 'archived', '1.1.0': 'production', '2.0.0': 'staging'}
        """
        ### BEGIN SOLUTION part=4 section="4. Promoting through stages"
        stages = self._read_state(name)["stages"]
        return {v: stages.get(v, "none") for v in self.list_versions(name)}
        ### END SOLUTION

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
        ### BEGIN SOLUTION part=4 section="4. Promoting through stages"
        if stage not in STAGES:
            raise ValidationError(f"Stage {stage!r} is not one of {STAGES}.")
        validate_version(version)
        self._existing_folder(name)
        with self._lock(name):
            if version not in self.list_versions(name):
                raise ModelNotFoundError(f"Model {name!r} has no version {version}.")
            state = self._read_state(name)
            when = utc_timestamp(self.clock())
            holder = self._holder(state, stage)
            if holder == version:
                raise ValidationError(f"Version {version} of model {name!r} is already in {stage}.")
            if holder is not None:
                if stage == "production":
                    self._move(state, holder, "archived", f"replaced by {version}", when)
                    state["previous_production"].append(holder)
                else:
                    self._move(state, holder, "none", f"replaced by {version}", when)
            self._move(state, version, stage, reason, when)
            if stage == "production":
                state["previous_production"] = [v for v in state["previous_production"] if v != version]
            self._write_state(name, state)
        ### END SOLUTION

    def get_stage_history(self, name: str) -> list[dict[str, Any]]:
        """Every stage transition of ``name``, oldest first.

        Each is ``{"version", "from_stage", "to_stage", "timestamp", "reason"}``
        with ``timestamp`` a timezone-aware UTC datetime and ``reason``
        a string or None. Raises ModelNotFoundError for an unknown name.

        >>> registry.get_stage_history("cancer")[0]
        {'version': '1.0.0', 'from_stage': 'none', 'to_stage': 'staging',
         'timestamp': datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.timezone.utc), 'reason': None}
        """
        ### BEGIN SOLUTION part=4 section="5. History and rollback"
        self._existing_folder(name)
        history = self._read_state(name)["history"]
        return [{**entry, "timestamp": _parse_timestamp(entry["timestamp"], name)} for entry in history]
        ### END SOLUTION

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
        ### BEGIN SOLUTION part=4 section="5. History and rollback"
        self._existing_folder(name)
        with self._lock(name):
            state = self._read_state(name)
            if not state["previous_production"]:
                raise ModelNotFoundError(f"Model {name!r} has no earlier production version to roll back to.")
            previous = state["previous_production"].pop()
            when = utc_timestamp(self.clock())
            current = self._holder(state, "production")
            if current is not None:
                self._move(state, current, "archived", reason, when)
            self._move(state, previous, "production", reason, when)
            self._write_state(name, state)
        return previous
        ### END SOLUTION
