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

Trust: every file is checked when it is read, and a problem is a
``ModelFormatError`` naming the file. The registry never follows a
symbolic link inside its root, so no read or write can be sent outside it.
With a ``signing_key``, every model file and stage file it writes is
signed (Part 1's HMAC), and a file it reads must carry a signature made
with that key: a checksum catches accidents, a signature catches forgers.

>>> registry = ModelRegistry("build/registry")
>>> path = registry.register_model("cancer", "1.0.0", model, metadata={"accuracy": 0.95})
>>> registry.promote_model("cancer", "1.0.0", "production", reason="beats the baseline")
>>> registry.load_model("cancer", "production").predict(X[:3])
array([1, 0, 0])
"""

from __future__ import annotations

import json
import os
import re
import reprlib
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
    check_signature,
    envelope_signature,
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
STATE_KEYS = ("format_version", "previous_production", "history", "signature")
"""The keys a stage file may hold; ``signature`` only in a signed registry."""
HISTORY_KEYS = ("version", "from_stage", "to_stage", "timestamp", "reason")
"""The keys of one transition in the history, in the order the file shows them."""


def _now_utc() -> datetime:
    """The system clock as a timezone-aware UTC datetime: the registry's default ``clock``."""
    return datetime.now(timezone.utc)


def _refuse_link(path: Path | os.DirEntry) -> Any:
    """Return ``path`` (a ``Path`` or an ``os.DirEntry``), or raise ModelFormatError if it is a symbolic link.

    The message names the link: ``"<path>: is a symbolic link; the
    registry never follows links inside its root."`` A link planted inside
    the root (as a model folder, a version folder, ``stages.json``,
    ``model.json`` or the lock file) could send a read, or worse a write,
    to any file on the machine. Links that point inside the root are
    refused too: two names sharing one folder would share one stage file.
    The check looks just before each use; whoever can swap a folder for a
    link in the instant between the two can also rewrite the registry's
    files outright, which is what a ``signing_key`` is for.
    """
    if path.is_symlink():
        raise ModelFormatError(
            f"{os.fspath(path)}: is a symbolic link; the registry never follows links inside its root."
        )
    return path


def _is_version(value: Any) -> bool:
    """True if ``value`` is a version ``validate_version`` accepts (so it is also a safe folder name)."""
    try:
        validate_version(value)
    except ValidationError:
        return False
    return True


def _check_name(name: Any) -> str:
    """Return ``name`` if ``NAME_PATTERN`` fully matches it, else raise ValidationError.

    The message shows the name as ``repr(name)`` does (``'../x'``) and says
    what a name may hold, so a user sees at once which character to change.
    Anything that is not a ``str`` (``None``, ``7``) is refused the same way.
    """
    raise NotImplementedError(
        "Part 4 (the model registry): write _check_name(). Read notebooks/04_model_registry.ipynb, section '2. Registering a version'. Check it with: make grade PART=4 SECTION=2"
    )


def _parse_timestamp(text: Any, where: str) -> datetime:
    """The UTC datetime an ISO 8601 ``text`` names; ModelFormatError starting with ``where`` otherwise.

    Refused: anything that ``datetime.fromisoformat`` cannot read ("is not
    ISO 8601", a non-string included) and a time without a zone ("has no
    time zone"): a naive time is ambiguous the day a server moves.
    """
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ModelFormatError(f"{where}: timestamp {reprlib.repr(text)} is not ISO 8601.") from None
    if moment.tzinfo is None:
        raise ModelFormatError(f"{where}: timestamp {text!r} has no time zone.")
    return moment.astimezone(timezone.utc)


def _check_state(document: Any, where: str) -> dict[str, Any]:
    """Return the parsed stage file ``document`` if it is sound; else ModelFormatError naming ``where``.

    Each message starts with ``where`` (the file) and says what is wrong,
    with these words: not an object ("must hold a JSON object"), a key
    outside ``STATE_KEYS`` ("unknown keys"), a ``format_version`` other
    than the integer 1 ("format_version"), a ``signature`` that is not a
    string, ``previous_production`` not a list of versions
    ("previous_production"),
    ``history`` not a list ("'history' must be a list"); and for a
    transition, named by its position as ``history[i]``: not exactly the
    keys ``HISTORY_KEYS``, a ``version`` that ``validate_version`` refuses,
    a ``reason`` that is neither a string nor null, a stage outside
    ``VERSION_STAGES``, a ``from_stage`` that is not the version's stage at
    that point of the history ("but it was in"), a timestamp
    ``_parse_timestamp`` refuses. Last, more than one version in
    ``staging`` or in ``production`` at the end ("at most one may be").

    So a sound file is at most three levels deep (an object, its lists,
    the transitions) and every other value in it is a string, an integer
    or null: a value nested any deeper is refused, and messages never
    print a whole value (``reprlib.repr`` shortens it).
    """
    if not isinstance(document, dict):
        raise ModelFormatError(f"{where}: must hold a JSON object, got {type(document).__name__}.")
    unknown = sorted(set(document) - set(STATE_KEYS))
    if unknown:
        raise ModelFormatError(f"{where}: unknown keys {reprlib.repr(unknown)}; a stage file has {list(STATE_KEYS)}.")
    format_version = document.get("format_version")
    if type(format_version) is not int or format_version != STATE_FORMAT_VERSION:
        raise ModelFormatError(
            f"{where}: format_version must be {STATE_FORMAT_VERSION}, got {reprlib.repr(format_version)}."
        )
    if not isinstance(document.get("signature", ""), str):
        raise ModelFormatError(f"{where}: 'signature' must be a string.")
    previous, history = document.get("previous_production"), document.get("history")
    if not isinstance(previous, list) or not all(_is_version(v) for v in previous):
        raise ModelFormatError(f"{where}: 'previous_production' must be a list of versions.")
    if not isinstance(history, list):
        raise ModelFormatError(f"{where}: 'history' must be a list of transitions.")
    stages: dict[str, str] = {}
    for i, entry in enumerate(history):
        if not isinstance(entry, dict) or set(entry) != set(HISTORY_KEYS):
            raise ModelFormatError(f"{where}: history[{i}] must have exactly the keys {list(HISTORY_KEYS)}.")
        version, from_stage, to_stage = entry["version"], entry["from_stage"], entry["to_stage"]
        if not _is_version(version) or not isinstance(entry["reason"], (str, type(None))):
            raise ModelFormatError(f"{where}: history[{i}] needs a valid version and a reason string or null.")
        if from_stage not in VERSION_STAGES or to_stage not in VERSION_STAGES:
            raise ModelFormatError(f"{where}: history[{i}] names a stage that is not one of {VERSION_STAGES}.")
        if from_stage != stages.get(version, "none"):
            raise ModelFormatError(
                f"{where}: history[{i}] moves {version} from {from_stage}, but it was in {stages.get(version, 'none')}."
            )
        _parse_timestamp(entry["timestamp"], f"{where}: history[{i}]")
        stages[version] = to_stage
    for stage in STAGES:
        holders = [v for v, s in stages.items() if s == stage]
        if len(holders) > 1:
            raise ModelFormatError(f"{where}: {len(holders)} versions are in {stage}; at most one may be.")
    return document


def _check_reason(reason: Any) -> str | None:
    """Return ``reason`` if it is a ``str`` or None, else ValidationError: "... reason must be a string or None"."""
    raise NotImplementedError(
        "Part 4 (the model registry): write _check_reason(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
    )


def _current_stages(history: list[dict[str, Any]]) -> dict[str, str]:
    """Each version's stage after the whole history: the ``to_stage`` of its last transition."""
    raise NotImplementedError(
        "Part 4 (the model registry): write _current_stages(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
    )


def _holder(stages: dict[str, str], stage: str) -> str | None:
    """The version that ``stages`` (version -> stage) puts in ``stage``, or None if none is there."""
    raise NotImplementedError(
        "Part 4 (the model registry): write _holder(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
    )


def _move(history: list[dict[str, Any]], stages: dict[str, str], version: str, to_stage: str,
          reason: str | None, when: str) -> None:
    """Put ``version`` in ``to_stage``: update ``stages`` and append the transition to ``history``."""
    raise NotImplementedError(
        "Part 4 (the model registry): write _move(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
    )


class ModelRegistry:
    """Every version of every model, with its stage, kept in one folder.

    ``root`` is created if missing. ``clock`` returns the current time as
    a timezone-aware UTC datetime (default: the system clock); tests and
    notebooks pass a fixed one so timestamps are reproducible.
    ``lock_timeout_s`` bounds how long a writer waits for another one (a
    ``filelock.Timeout`` after that).

    ``signing_key`` (bytes or str, kept as ``self.signing_key``; None: no
    signing) makes a signed registry: every version is saved with Part 1's
    ``save_model(..., signing_key=...)``, the stage file carries a
    ``"signature"`` too (``envelope_signature``), and every model file or
    stage file read must pass Part 1's signature check: an unsigned file
    ("is not signed") or one changed or signed with another key
    ("signature does not match") is a ModelFormatError naming the file.
    The key is never shown (not in ``repr``, not in any message).

    Writes (``register_model``, ``promote_model``, ``rollback``) hold
    ``FileLock(root / ".lock", timeout=lock_timeout_s)`` for the whole
    read-check-write (the given ``_writing``), so writers in several
    processes lose nothing; under the lock, the hidden ``*.tmp``
    leftovers of a crashed writer are deleted first. Reads take no lock
    and write nothing: a version folder never changes once written, and
    the stage file is replaced whole (``atomic_write_text``), so a reader
    sees the state before a write or after it.

    Every path below ``root`` is made by the given ``_path``, which checks
    the name (``_check_name``) and refuses a symbolic link anywhere on the
    way (``_refuse_link``): no name, and no link planted in the folder, can
    send a read or a write outside ``root``.

    >>> signed = ModelRegistry(registry.root, signing_key=b"a long random secret")
    >>> _ = registry.register_model("cancer", "1.0.0", model)  # no key: not signed
    >>> signed.load_model("cancer", "1.0.0")
    Traceback (most recent call last):
    ...
    deployment.errors.ModelFormatError: .../cancer/1.0.0/model.json: the file is not signed, ...
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        clock: Callable[[], datetime] | None = None,
        lock_timeout_s: float = 60.0,
        signing_key: bytes | str | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.clock = clock or _now_utc
        self.lock_timeout_s = lock_timeout_s
        self.signing_key = signing_key

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    def _path(self, name: str, *parts: str) -> Path:
        """``root / name / parts...``, with the name checked and no symbolic link on the way.

        Raises ValidationError for a name ``_check_name`` refuses, and
        ModelFormatError (``_refuse_link``) if the model's folder or any of
        ``parts`` below it is a symbolic link. Entries that do not exist
        yet are fine: ``self._path("cancer", "2.0.0")`` is where 2.0.0
        will go.
        """
        path = _refuse_link(self.root / _check_name(name))
        for part in parts:
            path = _refuse_link(path / part)
        return path

    def _existing_folder(self, name: str) -> Path:
        """The model's folder (``_path(name)``); ModelNotFoundError ("is not in the registry") if it does not exist."""
        folder = self._path(name)
        if not folder.is_dir():
            raise ModelNotFoundError(f"Model {name!r} is not in the registry at {self.root}.")
        return folder

    @contextmanager
    def _writing(self, name: str) -> Iterator[Path]:
        """Hold the registry's lock, clear a crashed writer's leftovers, and give the model's folder.

        Use it around every read-check-write::

            with self._writing(name) as folder:
                ...  # read, check, write: no other writer runs meanwhile

        The lock file must not be a link (``_refuse_link``). Leftovers are
        the hidden ``.*.tmp`` entries in ``root`` and in the model's folder
        (safe to delete: every temporary file is made under the lock, so
        any that exists now was left by a writer that died); a leftover
        that is a link is removed as a link, never followed.
        """
        folder = self._path(name)
        with FileLock(_refuse_link(self.root / LOCK_FILE), timeout=self.lock_timeout_s):
            for parent in (self.root, folder):
                for leftover in parent.glob(".*.tmp"):  # nothing when the folder does not exist
                    if leftover.is_dir() and not leftover.is_symlink():
                        shutil.rmtree(leftover)
                    else:
                        leftover.unlink()
            yield folder

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
        metadata) raises ValidationError ("already exists"). ``metadata``
        holds the model's own facts (``accuracy``, ``trained_at``: default
        the registry's clock) and any JSON-ready keys of yours, such as the
        training data's fingerprint or the parent version; the registry
        adds ``registered_at`` (``utc_timestamp`` of the clock). The new
        version starts in stage ``"none"`` (nothing is added to the stage
        file). With a ``signing_key``, the file is signed.

        Raises ValidationError for a bad name or version (one longer than
        ``MAX_VERSION_LENGTH``, 128 characters, is refused with a message
        giving that limit), metadata that is
        not a dict ("must be a dict"), an existing version, or a model,
        metadata or signing key that Part 1's ``save_model`` refuses; and
        ModelFormatError if a symbolic link stands where the model's folder
        or a version folder would be. A refused registration leaves no
        trace: not even the model's folder when it would have been the
        first version.

        Steps: check the name, the version and that ``metadata`` is a dict
        or None (no disk touched yet); then, holding the lock
        (``with self._writing(name) as folder:``), refuse an existing
        version (compare ``version_key`` with that of every name in the
        model's folder that ``_is_version``: ``list_versions`` comes in the
        next section); make a hidden temporary folder in ``root``
        (``tempfile.mkdtemp(dir=root, prefix=".", suffix=".tmp")``) and
        ``save_model`` into ``<temp>/<version>/model.json`` (with
        ``signing_key=self.signing_key``; this is where an unfitted model
        is refused: remove the temporary folder in a ``finally``); then
        commit with one ``os.rename``: of ``<temp>/<version>`` to
        ``root/<name>/<version>`` when the model's folder exists, else of
        ``<temp>`` itself to ``root/<name>``, so a new model's folder
        appears together with its first version; last, ``fsync_folder`` the
        model's folder and ``root``. A crash at any moment leaves either no
        new version or the complete one.

        >>> path = registry.register_model("cancer", "1.1.0", model,
        ...                                metadata={"accuracy": 0.97, "parent": "1.0.0"})
        >>> path.relative_to(registry.root)
        PosixPath('cancer/1.1.0/model.json')
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.register_model(). Read notebooks/04_model_registry.ipynb, section '2. Registering a version'. Check it with: make grade PART=4 SECTION=2"
        )

    def list_models(self) -> list[str]:
        """The names of the registered models, sorted.

        The folders in ``root`` whose names ``NAME_PATTERN`` matches (so
        the lock file and hidden temporary folders are skipped); no file is
        read. An entry with such a name that is a symbolic link is refused
        (``_refuse_link``: ModelFormatError naming it), never followed.
        Use ``with os.scandir(root) as entries:``, which closes the listing
        even when an error stops the loop.

        >>> for name in ("wine", "cancer"):
        ...     _ = registry.register_model(name, "1.0.0", model)
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
        (``os.scandir`` of the model's folder, skipping hidden entries and
        files such as ``stages.json``), never a model file, so listing
        thousands of versions takes milliseconds.

        Raises ModelNotFoundError for a name that was never registered
        (``_existing_folder``); ModelFormatError naming the entry for a
        folder whose name is not a version ("must be named by a version")
        and for any entry that is a symbolic link (``_refuse_link``, before
        asking whether it is a folder: that question follows the link).

        >>> for version in ("2.0.0", "1.10.0", "1.9.0", "2.0.0-rc.1"):
        ...     _ = registry.register_model("cancer", version, model)
        >>> registry.list_versions("cancer")
        ['1.9.0', '1.10.0', '2.0.0-rc.1', '2.0.0']
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.list_versions(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def resolve(self, name: str, version: str = "latest") -> str:
        """The exact version that ``version`` names: itself, ``"latest"``, ``"staging"`` or ``"production"``.

        ``"latest"`` is the highest semantic version (the last of
        ``list_versions``; "has no versions yet" if there is none); a stage
        name is looked up in the stage file (read and checked as in
        ``promote_model``; "has no version in <stage>" if the stage is
        empty), and its version's folder must exist (else ModelFormatError
        naming the stage file: "which does not exist"); an exact version
        must be a folder ("has no version <version>"). Folders are found
        with ``self._path`` (no link followed). No model file is read.

        Raises ModelNotFoundError for an unknown name or version or an
        empty stage, ValidationError for anything that is neither a version
        nor one of those words ("Cannot load"; ``"none"`` and
        ``"archived"`` included: each may hold many versions; a version
        longer than ``MAX_VERSION_LENGTH`` is refused by
        ``validate_version``).

        >>> for version in ("1.0.0", "1.1.0"):
        ...     _ = registry.register_model("cancer", version, model)
        >>> registry.promote_model("cancer", "1.0.0", "production")
        >>> registry.resolve("cancer", "production"), registry.resolve("cancer", "latest")
        ('1.0.0', '1.1.0')
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.resolve(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def load_model(self, name: str, version: str = "latest") -> Any:
        """Load a model: a version (``"1.1.0"``), ``"latest"``, ``"staging"`` or ``"production"``.

        Steps (shared with ``get_metadata``: write them once in
        ``_checked_model_file``): ``resolve`` the version, then read that
        one model file, ``self._path(name, version, "model.json")``,
        checked as Part 1's ``load_serialized(path,
        signing_key=self.signing_key)`` checks it, plus one check of the
        registry's own: the version written in the file must be its
        folder's name ("but its folder says"), so a file copied into
        another version's folder is refused, not served under the wrong
        version. Then build the model from that envelope with Part 1's
        ``build_model(serialized, str(path))``: Part 1's ``load_model``
        would read and check the file a second time.

        Raises ModelNotFoundError for an unknown name or version or an
        empty stage, and ModelFormatError, naming the file, for a damaged,
        hand-edited, misplaced or linked file, and (with a signing key) an
        unsigned or forged one.

        >>> _ = registry.register_model("cancer", "1.0.0", model)
        >>> registry.load_model("cancer", "latest").predict(X[:3])
        array([1, 0, 0])
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.load_model(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def get_metadata(self, name: str, version: str = "latest") -> dict[str, Any]:
        """The metadata stored with a version: ``registered_at``, ``trained_at``, ``accuracy``, your keys.

        ``version`` is read, and the file checked (signature included), as
        in ``load_model``; the model itself is not built. Timestamps come
        back as they are stored: ISO 8601 strings in UTC.

        >>> _ = registry.register_model("cancer", "1.1.0", model, metadata={"accuracy": 0.972})
        >>> registry.get_metadata("cancer", "1.1.0")["accuracy"]
        0.972
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.get_metadata(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def _checked_model_file(self, name: str, version: str) -> tuple[Path, SerializedModel]:
        """The path of the model file that ``version`` names, and its checked envelope.

        The steps ``load_model`` lists, up to (not including) building the
        model; ModelFormatError "the file holds version <a>, but its folder
        says <b>" for a file in the wrong version's folder.
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry._checked_model_file(). Read notebooks/04_model_registry.ipynb, section '3. Listing and loading versions'. Check it with: make grade PART=4 SECTION=3"
        )

    def _read_state(self, name: str) -> dict[str, Any]:
        """The model's stage file, checked; an empty state if no version was ever promoted.

        The empty state is ``{"format_version": 1, "previous_production":
        [], "history": []}``. The file is ``self._path(name, "stages.json")``
        (a link is refused). ModelFormatError naming the file for text that
        is not JSON ("not valid JSON"), for JSON nested so deeply that
        Python's parser gives up ("nested too deeply": catch the
        ``RecursionError``; a forged file can nest 100,000 levels), for
        anything ``_check_state`` refuses, and, with a signing key, for a
        file that fails Part 1's ``check_signature``.
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry._read_state(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
        )

    def _write_state(self, name: str, state: dict[str, Any]) -> None:
        """Replace the model's stage file with ``state`` (indented JSON), atomically.

        Any old ``"signature"`` in ``state`` is dropped; with a signing key,
        a new one is added (``envelope_signature`` of the state without it).
        Write with ``atomic_write_text``: it replaces the file itself, so
        even a link there would be replaced, not followed.
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry._write_state(). Read notebooks/04_model_registry.ipynb, section '4. Promoting through stages'. Check it with: make grade PART=4 SECTION=4"
        )

    def get_stages(self, name: str) -> dict[str, str]:
        """Every version of ``name`` with its current stage, in semantic-version order.

        The versions come from ``list_versions``; each one's stage is the
        ``to_stage`` of its last transition in the stage file's history, or
        ``"none"``. Raises ModelNotFoundError for an unknown name, and
        ModelFormatError for a damaged stage file (read and checked as in
        ``promote_model``).

        >>> for version in ("1.0.0", "1.1.0", "2.0.0"):
        ...     _ = registry.register_model("cancer", version, model)
        >>> registry.promote_model("cancer", "1.0.0", "production")
        >>> registry.promote_model("cancer", "1.1.0", "production")
        >>> registry.promote_model("cancer", "2.0.0", "staging")
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

        Raises ValidationError for another stage ("is not one of"), a
        reason that is not a string or None (``_check_reason``), or a
        version already in ``stage`` ("already in <stage>");
        ModelNotFoundError for an unknown name or version ("has no version
        <version>"); and
        ModelFormatError for a damaged, linked or (with a signing key)
        unsigned or forged stage file. A refused promotion changes nothing.

        Steps: check the stage, version and reason; then, holding the lock
        (``self._writing``), read the stage file (``_read_state``), check,
        change (``_move``), and write it back whole (``_write_state``).

        >>> _ = registry.register_model("cancer", "1.1.0", model)
        >>> registry.promote_model("cancer", "1.1.0", "production", reason="+2 points of accuracy")
        >>> registry.resolve("cancer", "production")
        '1.1.0'
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

        The stage file is checked on every read (``_read_state``, which
        lists what is refused), and anything wrong is a ModelFormatError
        naming the file: a hand-edited file is never half-believed.

        >>> from datetime import datetime, timezone
        >>> fixed = ModelRegistry("fixed", clock=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))
        >>> _ = fixed.register_model("cancer", "1.0.0", model)
        >>> fixed.promote_model("cancer", "1.0.0", "staging")
        >>> fixed.get_stage_history("cancer")
        [{'version': '1.0.0', 'from_stage': 'none', 'to_stage': 'staging',
          'timestamp': datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.timezone.utc), 'reason': None}]
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
        earlier production version is left to go back to ("no earlier
        production version"), ValidationError for a reason that is not a
        string or None.

        >>> for version in ("1.0.0", "1.1.0"):
        ...     _ = registry.register_model("cancer", version, model)
        ...     registry.promote_model("cancer", version, "production")
        >>> registry.rollback("cancer")
        '1.0.0'
        """
        raise NotImplementedError(
            "Part 4 (the model registry): write ModelRegistry.rollback(). Read notebooks/04_model_registry.ipynb, section '5. History and rollback'. Check it with: make grade PART=4 SECTION=5"
        )
