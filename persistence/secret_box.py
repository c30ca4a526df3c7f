"""Encryption of team secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`).

The key comes from `BACKFILLS_SECRETS_KEY`: one or more Fernet keys, comma-separated; the
first encrypts, every one decrypts, so a key is rotated by putting the new one first. With
the embedded default database (no `BACKFILLS_DATABASE_URL`) and no key set, one is generated
once into `<data dir>/secrets.key` (mode 0600, outside every team's directory). With a
database URL set and no key, start-up fails: a deployment must hold its key itself.

Each ciphertext seals the team id and secret name with the value, so a ciphertext copied to
another row (another team, another name) does not decrypt there.
"""

import json
import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from config import Settings

KEY_FILE = "secrets.key"


class SecretsKeyError(RuntimeError):
    """The service cannot encrypt or decrypt team secrets: no usable key."""


class UndecryptableSecret(Exception):
    """A stored secret that the configured keys do not open (a key was changed or removed)."""


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError):
            raise SecretsKeyError(
                "BACKFILLS_SECRETS_KEY must be Fernet keys (32 url-safe base64-encoded bytes "
                "each), comma-separated; make one with: python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None

    def seal(self, *, team_id: int, name: str, value: str) -> str:
        plain = json.dumps({"team_id": team_id, "name": name, "value": value})
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, *, team_id: int, name: str, ciphertext: str) -> str:
        try:
            sealed = json.loads(self._fernet.decrypt(ciphertext.encode()))
        except (InvalidToken, ValueError):
            raise UndecryptableSecret(name) from None
        if sealed.get("team_id") != team_id or sealed.get("name") != name:
            raise UndecryptableSecret(name)
        value: str = sealed["value"]
        return value


def load_secret_box(settings: Settings) -> SecretBox:
    """The box for the configured key(s); raises SecretsKeyError with what to do."""
    keys = [key.strip() for key in settings.secrets_key.split(",") if key.strip()]
    if keys:
        return SecretBox([key.encode() for key in keys])
    if settings.database_url:
        raise SecretsKeyError(
            "BACKFILLS_SECRETS_KEY is not set: with BACKFILLS_DATABASE_URL set, the key that "
            "encrypts team secrets must be configured (the same on every API and worker "
            "process). Make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        )
    return SecretBox([_embedded_key(settings.data_dir.resolve())])


def _embedded_key(data_dir: Path) -> bytes:
    """The embedded default's key: read from the data directory, or made there once.

    Written to a private temporary file and linked into place, so processes starting
    together (the API and a worker) agree on one key and never read a half-written file.
    """
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=data_dir, prefix=".secrets-key-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(Fernet.generate_key())
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return path.read_bytes().strip()
