"""The response envelopes every endpoint answers with, and their OpenAPI descriptions."""

import itertools
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "meta": {"request_id": "6f1c2b0e9d6a4e0f8a2b1c3d4e5f6a7b"},
                    "error": {"code": "NOT_FOUND", "message": "backfill not found"},
                }
            ]
        }
    )

    meta: Meta
    error: ErrorBody


def ok(data: DataT) -> Envelope[DataT]:
    return Envelope[DataT](meta=Meta(request_id=current_request_id()), data=data)


def ok_streamed(chunks: Iterator[Sequence[BaseModel]]) -> StreamingResponse:
    """`ok(list)` for a list too large to hold: the same JSON, written a chunk of items at a
    time. The first chunk is made before the answer starts, so a failure there still
    answers its error; a later one cuts the answer short (the client sees invalid JSON)."""
    first = next(chunks, [])
    meta = Meta(request_id=current_request_id()).model_dump_json()

    def body() -> Iterator[bytes]:
        yield f'{{"meta":{meta},"data":['.encode()
        separator = b""
        for chunk in itertools.chain([first], chunks):
            for item in chunk:
                yield separator + item.model_dump_json().encode()
                separator = b","
        yield b"]}"

    return StreamingResponse(body(), media_type="application/json")


ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
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


# One example error per status (two for 422), as a client would see them.
_EXAMPLES: dict[int, list[tuple[str, str, str | None]]] = {
    400: [
        (
            "BAD_REQUEST",
            "the request is invalid",
            "body.range_start: Value error, expected a date as YYYY-MM-DD",
        )
    ],
    401: [("UNAUTHORIZED", "the token is unknown, expired or revoked", None)],
    403: [("FORBIDDEN", "the token lacks the scope dwh_transfers_write", None)],
    404: [("NOT_FOUND", "backfill not found", None)],
    422: [
        ("UNPROCESSABLE_ENTITY", "range_end is before range_start", None),
        ("CONFLICT_ERROR", "the range overlaps incomplete backfill 41 of transfer 7", None),
    ],
    429: [("TOO_MANY_REQUESTS", "too many requests for this token; retry in 2s", None)],
    500: [("INTERNAL_SERVER_ERROR", "internal server error", None)],
    503: [("SERVICE_UNAVAILABLE", "Temporal is unreachable; retry later", None)],
}


def _examples(status: int) -> dict[str, dict[str, Any]]:
    examples = {}
    for code, message, description in _EXAMPLES[status]:
        error = {"code": code, "message": message}
        if description:
            error["description"] = description
        examples[code] = {
            "summary": message,
            "value": {"meta": {"request_id": "6f1c2b0e9d6a4e0f8a2b1c3d4e5f6a7b"}, "error": error},
        }
    return examples


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error statuses and 500 (any endpoint may answer it),
    all with the error envelope and an example of each."""
    return {
        status: {
            "model": ErrorEnvelope,
            "description": _DESCRIPTIONS[status],
            "content": {"application/json": {"examples": _examples(status)}},
        }
        for status in sorted({*statuses, 500})
    }
