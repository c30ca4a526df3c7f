"""`${NAME}` references in connector options, resolved when a run executes, and the
redaction that keeps the resolved values out of messages and logs.

A reference resolves from the team's own secrets, else from the worker's environment for
names the operator allowlists (`BACKFILLS_WORKER_ENV_ALLOWLIST`); the caller builds that
lookup (activities/transfer_run.py). Resolution is one pass: a value that itself holds
`${OTHER}` is used as it is, never resolved again.
"""

import re
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


def references(spec: Any) -> set[str]:
    """Every NAME a `${NAME}` in the spec's string values (at any depth) refers to."""
    if isinstance(spec, str):
        return set(REFERENCE.findall(spec))
    if isinstance(spec, list):
        return set().union(*(references(item) for item in spec))
    if isinstance(spec, dict):
        return set().union(*(references(item) for item in spec.values()))
    return set()


def resolve(spec: Mapping[str, Any], values: Mapping[str, str]) -> tuple[dict[str, Any], Redactor]:
    """The spec with every `${NAME}` replaced from `values`, and a redactor for those used.

    A reference that `values` lacks fails the run at once, naming the reference: no retry
    can make it appear.
    """
    redactor = Redactor()

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise PermanentError(
                f"${{{name}}} is neither a secret of the team nor a worker variable "
                "the operator allows; create the secret (PUT /teams/{team_id}/secrets/"
                f"{name})"
            )
        value = values[name]
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


class InFlightSecrets:
    """The secret values of the runs in flight in this process, for the log redaction that
    every log line passes through (observability/logs.py), whatever logger or thread wrote
    it: a library logging a URL or a header cannot put a resolved value in the log."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._references: dict[str, str] = {}
        self._lock = threading.Lock()

    @contextmanager
    def held(self, redactor: Redactor) -> Iterator[None]:
        values = list(redactor.secrets)
        with self._lock:
            self._counts.update(values)
            self._references.update(redactor.secrets)
        try:
            yield
        finally:
            with self._lock:
                self._counts.subtract(values)
                for value in values:
                    if self._counts[value] <= 0:
                        del self._counts[value]
                        self._references.pop(value, None)

    def redact(self, text: str) -> str:
        if not self._references:
            return text
        with self._lock:
            ordered = sorted(self._references.items(), key=lambda item: -len(item[0]))
        for value, reference in ordered:
            text = text.replace(value, reference)
        return text


IN_FLIGHT = InFlightSecrets()


def mask_url_passwords(text: str) -> str:
    """`scheme://user:password@host` -> `scheme://user:***@host`, anywhere in a text; a
    `${NAME}` reference in the password's place is kept, since it holds no secret."""

    def mask(match: re.Match[str]) -> str:
        password = match.group("pw")
        return match.group(0) if REFERENCE.fullmatch(password) else match.group("head") + MASK + "@"

    return _URL_PASSWORD.sub(mask, text)
