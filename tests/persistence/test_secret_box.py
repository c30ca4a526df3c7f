"""Team secrets at rest: Fernet with key rotation, bound to their team and name, and the key's
origin (the setting, or the embedded default's generated file)."""

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config import Settings
from persistence.secret_box import (
    KEY_FILE,
    SecretBox,
    SecretsKeyError,
    UndecryptableSecret,
    load_secret_box,
)

VALUE = "s3cr3t-value-of-team-7"


def key() -> bytes:
    return Fernet.generate_key()


def test_a_sealed_value_opens_and_does_not_hold_the_value_in_clear() -> None:
    box = SecretBox([key()])

    sealed = box.seal(team_id=7, name="API_KEY", value=VALUE)

    assert VALUE not in sealed
    assert box.open(team_id=7, name="API_KEY", ciphertext=sealed) == VALUE


@pytest.mark.parametrize(("team_id", "name"), [(8, "API_KEY"), (7, "OTHER")])
def test_a_ciphertext_copied_to_another_team_or_name_does_not_open(team_id: int, name: str) -> None:
    box = SecretBox([key()])
    sealed = box.seal(team_id=7, name="API_KEY", value=VALUE)

    with pytest.raises(UndecryptableSecret):
        box.open(team_id=team_id, name=name, ciphertext=sealed)


def test_a_new_key_first_still_opens_what_the_old_one_sealed() -> None:
    old, new = key(), key()
    sealed_before = SecretBox([old]).seal(team_id=1, name="A", value=VALUE)

    rotated = SecretBox([new, old])
    sealed_after = rotated.seal(team_id=1, name="A", value=VALUE)

    assert rotated.open(team_id=1, name="A", ciphertext=sealed_before) == VALUE
    assert SecretBox([new]).open(team_id=1, name="A", ciphertext=sealed_after) == VALUE


def test_a_removed_key_leaves_its_secrets_undecryptable() -> None:
    sealed = SecretBox([key()]).seal(team_id=1, name="A", value=VALUE)

    with pytest.raises(UndecryptableSecret):
        SecretBox([key()]).open(team_id=1, name="A", ciphertext=sealed)


def test_a_tampered_ciphertext_does_not_open() -> None:
    box = SecretBox([key()])
    sealed = box.seal(team_id=1, name="A", value=VALUE)
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]

    with pytest.raises(UndecryptableSecret):
        box.open(team_id=1, name="A", ciphertext=tampered)


def test_a_key_that_is_not_a_fernet_key_is_a_clear_error() -> None:
    with pytest.raises(SecretsKeyError, match="Fernet"):
        load_secret_box(Settings(secrets_key="hunter2"))


def test_without_a_key_a_configured_database_is_a_start_up_error(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql://db/backfills", data_dir=tmp_path)

    with pytest.raises(SecretsKeyError, match="BACKFILLS_SECRETS_KEY is not set"):
        load_secret_box(settings)
    assert not (tmp_path / KEY_FILE).exists()


def test_the_embedded_default_makes_one_private_key_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(database_url="", data_dir=tmp_path / "data")

    first = load_secret_box(settings)
    sealed = first.seal(team_id=1, name="A", value=VALUE)
    second = load_secret_box(settings)

    key_file = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert second.open(team_id=1, name="A", ciphertext=sealed) == VALUE
    assert [p.name for p in key_file.parent.iterdir()] == [KEY_FILE]
