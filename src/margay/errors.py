"""margay's small error tree; every error renders as one JSON envelope with an HTTP status."""

from __future__ import annotations

from typing import Any


class MargayError(Exception):
    """Base error: a message for people, a machine-readable type, optional details, an HTTP status."""

    status = 500
    type = "internal_error"

    def __init__(self, message: str, *, details: Any = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if status is not None:
            self.status = status

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class ConfigError(MargayError):
    status = 400
    type = "config_error"


class ParseError(MargayError):
    status = 400
    type = "parse_error"


class QueryError(MargayError):
    status = 400
    type = "query_error"


class BackendError(MargayError):
    status = 503
    type = "backend_error"


class Unauthorized(MargayError):
    status = 401
    type = "unauthorized"


class Forbidden(MargayError):
    status = 403
    type = "forbidden"


class NotFound(MargayError):
    status = 404
    type = "not_found"


class PayloadTooLarge(MargayError):
    status = 413
    type = "payload_too_large"


class UnsupportedMediaType(MargayError):
    status = 415
    type = "unsupported_media_type"


class InsufficientStorage(MargayError):
    status = 507
    type = "insufficient_storage"
