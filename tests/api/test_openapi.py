"""The OpenAPI document describes the bearer scheme, the envelopes and the error responses."""

from typing import Any

import httpx
import openapi_spec_validator
import pytest
from jsonschema import Draft202012Validator

from tests.support import Stack


def test_openapi_documents_bearer_auth_envelopes_and_errors(stack: Stack) -> None:
    document = httpx.get(stack.api_url.removesuffix("/v1") + "/openapi.json").json()

    schemes = document["components"]["securitySchemes"]
    assert any(s == {"type": "http", "scheme": "bearer", **s} for s in schemes.values())
    assert "ErrorEnvelope" in document["components"]["schemas"]
    assert "HTTPValidationError" not in str(document), "validation errors answer 400, not 422"
    operations = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in methods.items()
    ]
    assert len(operations) == 20
    for path, method, operation in operations:
        assert operation.get("operationId"), (path, method)
        assert operation.get("summary"), (path, method)
        assert operation.get("security"), (path, method)
        # /v1/me takes no parameter and no scope: it can answer 401, never 400 or 403
        for status in ("401",) if path == "/v1/me" else ("400", "401", "403"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (path, method, status)
        success = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert success["$ref"].startswith("#/components/schemas/Envelope"), (path, method)


# --- completeness: what a client generated from the document needs ------------------------

ERROR_CODES = {  # the contract's codes by status
    "400": {"BAD_REQUEST"},
    "401": {"UNAUTHORIZED"},
    "403": {"FORBIDDEN"},
    "404": {"NOT_FOUND"},
    "422": {"UNPROCESSABLE_ENTITY", "CONFLICT_ERROR"},
    "429": {"TOO_MANY_REQUESTS"},
    "500": {"INTERNAL_SERVER_ERROR"},
    "503": {"SERVICE_UNAVAILABLE"},
}


@pytest.fixture(scope="module")
def document(stack: Stack) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(
        stack.api_url.removesuffix("/v1") + "/openapi.json", timeout=30
    ).json()
    return found


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def media_examples(media: dict[str, Any]) -> list[Any]:
    """A media type's `example` and the values of its `examples`."""
    found = [media["example"]] if "example" in media else []
    return found + [e["value"] for e in media.get("examples", {}).values()]


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator whose `#/components/...` refs resolve in `document`."""
    return Draft202012Validator({**schema, "components": document["components"]})


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    openapi_spec_validator.validate(document)


def test_every_operation_has_a_unique_id_and_a_summary(document: dict[str, Any]) -> None:
    found = operations(document)
    ids = [operation.get("operationId") for _, _, operation in found]

    assert all(ids), [(path, method) for path, method, o in found if not o.get("operationId")]
    assert len(set(ids)) == len(ids)
    assert all(operation.get("summary") for _, _, operation in found)


def test_every_success_response_has_an_example(document: dict[str, Any]) -> None:
    """Either the response itself, or the schema of its `data`, shows an example."""
    missing = []
    for path, method, operation in operations(document):
        media = operation["responses"]["200"]["content"]["application/json"]
        if media_examples(media):
            continue
        data = resolve(document, resolve(document, media["schema"])["properties"]["data"])
        if data.get("type") == "array":
            data = resolve(document, data["items"])
        if not data.get("examples"):
            missing.append((method, path))

    assert not missing


def test_every_request_body_has_an_example(document: dict[str, Any]) -> None:
    bodies = [
        (method, path, operation["requestBody"])
        for path, method, operation in operations(document)
        if "requestBody" in operation
    ]

    assert {method for method, _, _ in bodies} == {"post", "patch", "put"}
    for method, path, body in bodies:
        media = body["content"]["application/json"]
        schema = resolve(document, media["schema"])
        assert media_examples(media) or schema.get("examples"), (method, path)


def test_every_error_response_has_the_envelope_and_an_example_of_its_code(
    document: dict[str, Any],
) -> None:
    for path, method, operation in operations(document):
        errors = {s: r for s, r in operation["responses"].items() if s >= "400"}
        assert "500" in errors, (method, path)
        for status, response in errors.items():
            media = response["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
            assert response.get("description"), (method, path, status)
            examples = media_examples(media)
            assert examples, (method, path, status)
            assert {e["error"]["code"] for e in examples} <= ERROR_CODES[status]


def test_the_422_of_create_backfill_shows_both_of_its_codes(document: dict[str, Any]) -> None:
    create = document["paths"]["/v1/teams/{team_id}/transfers/{transfer_id}/backfills"]["post"]
    media = create["responses"]["422"]["content"]["application/json"]

    assert {e["error"]["code"] for e in media_examples(media)} == {
        "UNPROCESSABLE_ENTITY",
        "CONFLICT_ERROR",
    }


def test_every_example_matches_its_schema(document: dict[str, Any]) -> None:
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        for example in schema.get("examples", []):
            validator(document, {"$ref": f"#/components/schemas/{name}"}).validate(example)
            checked += 1
    for _, _, operation in operations(document):
        responses = list(operation["responses"].values())
        bodies = [operation["requestBody"]] if "requestBody" in operation else []
        for part in responses + bodies:
            media = part["content"]["application/json"]
            for example in media_examples(media):
                validator(document, media["schema"]).validate(example)
                checked += 1

    assert checked > 20


def test_the_response_models_carry_examples(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    for name in (
        "BackfillOut",
        "TransferOut",
        "TransferRunItemOut",
        "TransferRunDetailOut",
        "ErrorEnvelope",
        "CreateBackfillRequest",
        "UpdateBackfillRequest",
        "CreateTransferRequest",
    ):
        assert schemas[name].get("examples"), name
    detail = schemas["TransferRunDetailOut"]["examples"][0]
    assert detail["query_details"], "the detail example shows its own fields, not the item's"
