"""`${NAME}` references: resolved from the values a run may use, never shown resolved."""

import pytest

from connectors.errors import PermanentError
from connectors.masking import masked
from connectors.secrets import InFlightSecrets, mask_url_passwords, references, resolve


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


def test_a_missing_reference_fails_the_run_permanently_naming_it() -> None:
    with pytest.raises(PermanentError, match=r"\$\{MISSING_TOKEN\} is neither a secret") as raised:
        resolve({"headers": {"X-Key": "${MISSING_TOKEN}"}}, {"OTHER": "value-of-other"})

    assert "value-of-other" not in str(raised.value)


def test_resolution_is_one_pass_a_value_is_never_resolved_again() -> None:
    """A team's secret value holding `${WORKER_VAR}` must not pull in that variable."""
    resolved, _ = resolve(
        {"url": "https://h/${MINE}/{data_date}"},
        {"MINE": "${BACKFILLS_DATABASE_URL}", "BACKFILLS_DATABASE_URL": "postgresql://svc"},
    )

    assert resolved["url"] == "https://h/${BACKFILLS_DATABASE_URL}/{data_date}"


def test_references_are_found_at_any_depth() -> None:
    spec = {"a": "${ONE}x${TWO}", "b": [{"c": "${THREE}"}, 5, None], "d": "$NOT {ALSO_NOT}"}

    assert references(spec) == {"ONE", "TWO", "THREE"}


def test_in_flight_secrets_are_redacted_only_while_held() -> None:
    _, redact = resolve({"h": "${TOKEN}"}, {"TOKEN": "tok-live-1234"})
    in_flight = InFlightSecrets()

    with in_flight.held(redact), in_flight.held(redact):
        assert in_flight.redact("GET https://x/?k=tok-live-1234") == "GET https://x/?k=${TOKEN}"
    assert in_flight.redact("tok-live-1234") == "tok-live-1234"


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
