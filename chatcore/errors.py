"""One error hierarchy with stable codes.

Actions and storage raise ``ChatError`` subclasses; the HTTP middleware turns them into
``{"error": {"code", "message"}}`` responses and the Socket.IO wrapper into
``{"ok": false, "error": {...}}`` acks. Nothing below ``transport/`` raises ``web.HTTP*``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ChatError(Exception):
    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            err["details"] = self.details
        return err


class Unauthorized(ChatError):
    code = "unauthorized"
    status = 401


class Forbidden(ChatError):
    code = "forbidden"
    status = 403


class NotFound(ChatError):
    code = "not_found"
    status = 404


class Invalid(ChatError):
    code = "invalid"
    status = 400


class Conflict(ChatError):
    code = "conflict"
    status = 409


class Archived(Forbidden):
    """A write to an archived (read-only) room; its history stays readable."""

    code = "archived"


class Deactivated(Forbidden):
    """The account was deactivated by an admin: no login, refresh, connect or token use."""

    code = "deactivated"


class PasswordChangeRequired(Forbidden):
    """An admin forced a password reset: the login holds no tokens until a new password is set
    (``POST /api/v1/auth/password``)."""

    code = "password_change_required"


class Gone(NotFound):
    """What was there is deleted (a deleted message's attachments): 410, code ``not_found``."""

    status = 410


class UnsupportedType(ChatError):
    """An upload whose content (detected from its bytes) is not an allowed type."""

    code = "unsupported_type"
    status = 415


class TooLarge(ChatError):
    code = "too_large"
    status = 413


class RateLimited(ChatError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str = "", retry_after: float = 1.0) -> None:
        super().__init__(message or "too many requests", retry_after=round(retry_after, 3))
        self.retry_after = retry_after


class Unavailable(ChatError):
    code = "unavailable"
    status = 503


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
