"""The OpenAPI document, without FastAPI's default 422 validation response, with whole examples.

Validation errors answer 400 with the error envelope here (see `api/errors.py`), so the
framework's `HTTPValidationError` schema would document a response that never happens.
"""

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_DEFAULT_422 = "#/components/schemas/HTTPValidationError"
# The error codes the API answers beyond the contract's list, which no operation documents.
CODES_BEYOND_THE_CONTRACT = (
    "Besides the codes each operation lists, any request may answer `METHOD_NOT_ALLOWED` "
    "(405: the path does not support the method; `Allow` and the message name those it does) "
    "or `PAYLOAD_TOO_LARGE` (413: the body is over the service's size limit), both with the "
    "error envelope."
)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=f"{app.description}\n\n{CODES_BEYOND_THE_CONTRACT}",
                routes=app.routes,
            )
            _drop_default_validation_responses(document)
            _restore_nulls_in_examples(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_default_validation_responses(document: dict[str, Any]) -> None:
    for methods in document.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.get("responses", {})
            schema = responses.get("422", {}).get("content", {}).get("application/json", {})
            if schema.get("schema", {}).get("$ref") == _DEFAULT_422:
                del responses["422"]
    schemas = document.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)


def _restore_nulls_in_examples(document: dict[str, Any]) -> None:
    """FastAPI writes the document without any null (`exclude_none`), the nulls of examples
    included, which leaves a model's example without its nullable fields, invalid against its
    own schema. Put back the examples of our models as pydantic generates them."""
    schemas = document.get("components", {}).get("schemas", {})
    for model in _api_models():
        generated = model.model_json_schema(mode="serialization")
        if "examples" in generated and model.__name__ in schemas:
            schemas[model.__name__]["examples"] = generated["examples"]


def _api_models() -> Iterator[type[BaseModel]]:
    """The request and response models defined in `api` (not the generic envelopes' variants)."""
    pending = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.startswith("api.") and "[" not in model.__name__:
            yield model
