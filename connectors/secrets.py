"""`${NAME}` references in connector options, resolved from the worker's environment when a
run executes, and the redaction that keeps the resolved values out of messages and logs."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import PermanentError

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^@/?#\s]+)@")
MASK = "***"


@dataclass
class Redactor:
    """Replaces every resolved secret, and any password inside a URL, in a text."""

    secrets: dict[str, str] = field(default_factory=dict)  # value -> its ${NAME} reference

    def __call__(self, text: str) -> str:
        for value in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(value, self.secrets[value])
        return mask_url_passwords(text)


def resolve(spec: Mapping[str, Any], env: Mapping[str, str]) -> tuple[dict[str, Any], Redactor]:
    """The spec with every `${NAME}` replaced from `env`, and a redactor for the values used.

    A reference to a variable the worker does not have fails the run at once: no retry can
    make it appear.
    """
    redactor = Redactor()

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise PermanentError(f"the worker has no environment variable {name} (${{{name}}})")
        value = env[name]
        if value:
            redactor.secrets[value] = match.group(0)
        return value

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return REFERENCE.sub(substitute, value)
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        return value

    return walk(dict(spec)), redactor


def mask_url_passwords(text: str) -> str:
    """`scheme://user:password@host` -> `scheme://user:***@host`, anywhere in a text; a
    `${NAME}` reference in the password's place is kept, since it holds no secret."""

    def mask(match: re.Match[str]) -> str:
        password = match.group("pw")
        return match.group(0) if REFERENCE.fullmatch(password) else match.group("head") + MASK + "@"

    return _URL_PASSWORD.sub(mask, text)
