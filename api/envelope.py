"""The response envelopes every endpoint answers with, and their OpenAPI descriptions."""

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from api.request_context import current_request_id

DataT = TypeVar("DataT")


class Meta(BaseModel):
    request_id: str = Field(examples=["6f1c2b0e9d6a4e0f8a2b1c3d4e5f6a7b"])


class Envelope(BaseModel, Generic[DataT]):
    meta: Meta
    data: DataT


class ErrorBody(BaseModel):
    code: str = Field(examples=["NOT_FOUND"])
    message: str = Field(examples=["backfill not found"])
    description: str | None = None


class ErrorEnvelope(BaseModel):
    meta: Meta
    error: ErrorBody


def ok(data: DataT) -> Envelope[DataT]:
    return Envelope[DataT](meta=Meta(request_id=current_request_id()), data=data)


ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}

_DESCRIPTIONS = {
    400: "The request cannot be read: malformed JSON, wrong types, missing fields.",
    401: "Missing, unknown, expired or revoked token.",
    403: "The token lacks the scope, or the caller the team role, this endpoint needs.",
    404: "No such object in this team.",
    422: "Well-formed but cannot be carried out (`UNPROCESSABLE_ENTITY` or `CONFLICT_ERROR`).",
    429: "Too many requests for this token; see `Retry-After`.",
    500: "Unexpected error; the request id identifies it in the service's logs.",
    503: "The database or Temporal is unreachable; retry later.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error statuses, all with the error envelope."""
    return {
        status: {"model": ErrorEnvelope, "description": _DESCRIPTIONS[status]}
        for status in statuses
    }
