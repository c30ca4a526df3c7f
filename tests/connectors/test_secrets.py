"""`${NAME}` references: resolved from the worker's environment, never shown resolved."""

import pytest

from connectors.errors import PermanentError
from connectors.masking import masked
from connectors.secrets import mask_url_passwords, resolve


def test_references_resolve_anywhere_in_the_options() -> None:
    spec = {
        "type": "sql",
        "url": "postgresql://loader:${PG_PASSWORD}@db.internal/ads",
        "queries": ["select * from t where d = :data_date and k = '${TENANT}'"],
        "headers": {"Authorization": "Bearer ${API_TOKEN}"},
        "timeout_s": 5,
    }
    env = {"PG_PASSWORD": "hunter2!", "TENANT": "acme", "API_TOKEN": "tok-123456"}

    resolved, _ = resolve(spec, env)

    assert resolved == {
        "type": "sql",
        "url": "postgresql://loader:hunter2!@db.internal/ads",
        "queries": ["select * from t where d = :data_date and k = 'acme'"],
        "headers": {"Authorization": "Bearer tok-123456"},
        "timeout_s": 5,
    }
    assert spec["url"] == "postgresql://loader:${PG_PASSWORD}@db.internal/ads", "input unchanged"


def test_a_missing_variable_fails_the_run_permanently_naming_it() -> None:
    with pytest.raises(PermanentError, match=r"no environment variable MISSING_TOKEN"):
        resolve({"headers": {"X-Key": "${MISSING_TOKEN}"}}, {})


def test_the_redactor_puts_references_back_and_masks_url_passwords() -> None:
    _, redact = resolve(
        {"url": "postgresql://u:${PG_PASSWORD}@h/db", "token": "${API_TOKEN}"},
        {"PG_PASSWORD": "s3cr3t-pw", "API_TOKEN": "tok-abcdef"},
    )

    message = redact(
        "could not connect to postgresql://u:s3cr3t-pw@h/db; "
        "rejected tok-abcdef; also mysql://root:literal@other/x"
    )

    assert "s3cr3t-pw" not in message and "tok-abcdef" not in message
    assert "literal" not in message
    assert message == (
        "could not connect to postgresql://u:${PG_PASSWORD}@h/db; "
        "rejected ${API_TOKEN}; also mysql://root:***@other/x"
    )


def test_url_passwords_are_masked_but_references_kept() -> None:
    assert mask_url_passwords("https://a:b@host/x") == "https://a:***@host/x"
    assert mask_url_passwords("postgresql://u:${PW}@h/db") == "postgresql://u:${PW}@h/db"
    assert mask_url_passwords("https://host/path?x=1") == "https://host/path?x=1"


def test_api_output_masks_literal_secrets_and_shows_references() -> None:
    spec = {
        "type": "http",
        "url": "https://user:plain-pw@api.example.com/{data_date}",
        "headers": {
            "Authorization": "Bearer literal-token",
            "X-Api-Key": "${API_KEY}",
            "Accept": "application/json",
        },
    }

    shown = masked(spec)

    assert shown == {
        "type": "http",
        "url": "https://user:***@api.example.com/{data_date}",
        "headers": {
            "Authorization": "***",
            "X-Api-Key": "${API_KEY}",
            "Accept": "application/json",
        },
    }
    assert "plain-pw" not in str(shown) and "literal-token" not in str(shown)
