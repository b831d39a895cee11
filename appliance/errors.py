"""One error hierarchy for the whole product.

Core modules raise these; the HTTP layer renders them in the one JSON shape
``{"error": {"code", "message", "details"}}``. Messages are written for the client:
never put platform SQL, tracebacks or secrets into them.
"""

from __future__ import annotations

from typing import Any


class AtlasError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(AtlasError):
    status = 400
    code = "bad_request"


class Unauthorized(AtlasError):
    status = 401
    code = "unauthorized"


class Forbidden(AtlasError):
    status = 403
    code = "forbidden"


class NotFound(AtlasError):
    status = 404
    code = "not_found"


class Conflict(AtlasError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AtlasError):
    status = 413
    code = "payload_too_large"


class Unprocessable(AtlasError):
    status = 422
    code = "unprocessable"


class RateLimited(AtlasError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **kw: Any) -> None:
        seconds = max(1, int(retry_after + 0.999))
        headers = {"Retry-After": str(seconds)}
        super().__init__(message, details={"retry_after": seconds}, headers=headers, **kw)


class ServiceUnavailable(AtlasError):
    status = 503
    code = "service_unavailable"


class GatewayTimeout(AtlasError):
    status = 504
    code = "timeout"


class ConfigError(Exception):
    """Configuration is invalid. ``problems`` lists every error found, each naming its key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StartupError(Exception):
    """The daemon cannot start; the message tells the operator what to do."""
