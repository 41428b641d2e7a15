"""The errors the package raises on purpose.

Every one is a ``DeploymentError``, so a caller can catch the package's
errors in one ``except`` and let real bugs through. Each also subclasses
the standard exception a Python programmer would expect (``ValueError``
for bad input, ``KeyError`` for something missing), so generic code keeps
working. Messages say what was wrong and where, in one sentence.
"""

from __future__ import annotations


class DeploymentError(Exception):
    """Base class of every error this package raises on purpose."""


class ValidationError(DeploymentError, ValueError):
    """Bad input: instances, versions, names, weights, stages, or an unfit model."""


class BatchTooLargeError(ValidationError):
    """Too many rows in one request (``APIConfig.max_batch_size``), or a body too large to read (HTTP 413)."""


class ModelFormatError(ValidationError):
    """A model file that cannot be read: not JSON, truncated, tampered, or ill-formed."""


class ModelNotFoundError(DeploymentError, KeyError):
    """A model, version or stage that does not exist."""

    def __str__(self) -> str:
        # KeyError's str() adds quotes around the message; keep it readable.
        return str(self.args[0]) if self.args else ""


class ModelUnavailableError(DeploymentError):
    """Neither the model nor its fallback could answer: the service's fault, not the client's (HTTP 503)."""


class AuthenticationError(DeploymentError):
    """A request without a valid API key."""


class RateLimitError(DeploymentError):
    """A client over its request rate; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = float(retry_after_s)
