"""The OpenAPI document describes the bearer scheme, the envelopes and the error responses."""

import httpx

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
    assert len(operations) == 11
    for path, method, operation in operations:
        assert operation.get("operationId"), (path, method)
        assert operation.get("summary"), (path, method)
        assert operation.get("security"), (path, method)
        for status in ("400", "401", "403"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (path, method, status)
        success = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert success["$ref"].startswith("#/components/schemas/Envelope"), (path, method)
