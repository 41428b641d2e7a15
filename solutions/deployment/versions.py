"""Semantic versions (https://semver.org): checking and ordering them.

A model version is ``MAJOR.MINOR.PATCH`` with an optional pre-release
(``2.1.0-rc.1``) and build metadata (``1.0.0+build.7``). Versions sort by
number, not by text: ``1.10.0`` comes after ``1.9.0``, and a pre-release
comes before its release.

>>> sorted(["1.10.0", "1.9.0", "1.10.0-rc.1"], key=version_key)
['1.9.0', '1.10.0-rc.1', '1.10.0']
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ValidationError

__all__ = ["MAX_VERSION_LENGTH", "validate_version", "version_key"]

MAX_VERSION_LENGTH = 128
"""The longest version accepted, in characters: a version names a folder in the registry (at most 255 bytes)."""

# The regular expression recommended by semver.org, without named groups.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def validate_version(version: Any) -> str:
    """Return ``version`` if it is a semantic version of at most ``MAX_VERSION_LENGTH`` characters.

    Anything else is a ValidationError: ``Version '1.0' is not a semantic
    version such as '1.0.0' or '2.1.0-rc.1'.``, or, for a string that is too
    long, ``Version '11111111111111111111'... is 300 characters long; the
    limit is 128.`` (checked first, so a huge string is never matched).

    >>> validate_version("2.1.0-rc.1")
    '2.1.0-rc.1'
    """
    if isinstance(version, str) and len(version) > MAX_VERSION_LENGTH:
        raise ValidationError(
            f"Version {version[:20]!r}... is {len(version)} characters long; the limit is {MAX_VERSION_LENGTH}."
        )
    if not isinstance(version, str) or not _SEMVER.fullmatch(version):
        raise ValidationError(
            f"Version {version!r} is not a semantic version such as '1.0.0' or '2.1.0-rc.1'."
        )
    return version


def version_key(version: str) -> tuple:
    """A sort key that orders semantic versions by precedence (build metadata ignored)."""
    match = _SEMVER.fullmatch(validate_version(version))
    major, minor, patch, pre, _build = match.groups()
    if pre is None:
        pre_key: tuple = ((2,),)  # a release sorts after all of its pre-releases
    else:
        # Numeric identifiers sort below alphanumeric ones, and by value.
        pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
        pre_key = ((1,),) + pre_key
    return (int(major), int(minor), int(patch), pre_key)
