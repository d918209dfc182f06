"""Why a request was refused, as RFC 6750 challenges inside RFC 9457 problem responses."""

from __future__ import annotations

from http import HTTPStatus

from app.core.errors import AppError, ServiceUnavailableError

SCHEME = "Bearer"


def _quoted(value: str) -> str:
    # RFC 6750 3: error_description is restricted to printable ASCII without `"` and `\`.
    return '"' + "".join(c for c in value if " " <= c <= "~" and c not in '"\\') + '"'


def challenge(**attributes: str) -> str:
    """Build a `WWW-Authenticate` value: `Bearer` and its attributes in order."""
    if not attributes:
        return SCHEME
    return (
        SCHEME + " " + ", ".join(f"{name}={_quoted(value)}" for name, value in attributes.items())
    )


class MissingTokenError(AppError):
    """No bearer token came with the request (RFC 6750 3.1: a bare challenge)."""

    status = HTTPStatus.UNAUTHORIZED
    slug = "unauthorized"

    def __init__(self) -> None:
        super().__init__("Send an access token: Authorization: Bearer <token>.")

    @property
    def headers(self) -> dict[str, str] | None:
        """A challenge without an error code: the client did not try to authenticate."""
        return {"WWW-Authenticate": challenge()}


class InvalidTokenError(AppError):
    """The token is malformed, expired, not yet valid, forged or meant for someone else."""

    status = HTTPStatus.UNAUTHORIZED
    slug = "invalid-token"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The access token is not accepted: {reason}.")
        self.reason = reason

    @property
    def headers(self) -> dict[str, str] | None:
        """`error="invalid_token"` with the reason; the token itself is never echoed."""
        return {"WWW-Authenticate": challenge(error="invalid_token", error_description=self.reason)}


class InsufficientScopeError(AppError):
    """A valid token without the permission the operation needs."""

    status = HTTPStatus.FORBIDDEN
    slug = "insufficient-scope"

    def __init__(self, needed: str, description: str) -> None:
        super().__init__(f"The access token does not allow this: {description}.")
        self.needed = needed
        self.description = description

    @property
    def headers(self) -> dict[str, str] | None:
        """`error="insufficient_scope"` and the scope (or role) the operation needs."""
        return {
            "WWW-Authenticate": challenge(
                error="insufficient_scope", scope=self.needed, error_description=self.description
            )
        }


class AccountDeactivatedError(AppError):
    """The caller's token is valid but an admin deactivated the account."""

    status = HTTPStatus.FORBIDDEN
    slug = "account-deactivated"

    def __init__(self) -> None:
        super().__init__("This account is deactivated; ask an administrator.")


class ProviderUnavailableError(ServiceUnavailableError):
    """The token names a key we do not have, and the identity provider cannot be reached."""

    slug = "identity-provider-unavailable"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("The identity provider's keys cannot be fetched right now; retry shortly.")
        self.retry_after_seconds = str(max(1, retry_after_seconds))
