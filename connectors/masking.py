"""How a transfer's connector options are shown to API callers: never a password."""

import re
from typing import Any

from connectors.secrets import MASK, REFERENCE, mask_url_passwords

_SENSITIVE_KEY = re.compile(r"pass|secret|token|key|auth|cookie|credential", re.IGNORECASE)


def masked(spec: Any, key: str = "") -> Any:
    """A copy of `spec` where passwords in URLs, and values under sensitive-looking keys, are
    masked; values holding a `${NAME}` reference are shown as they are: the secret is
    only resolved on the worker."""
    if isinstance(spec, dict):
        return {k: masked(v, k) for k, v in spec.items()}
    if isinstance(spec, list):
        return [masked(item, key) for item in spec]
    if isinstance(spec, str):
        if _SENSITIVE_KEY.search(key) and not REFERENCE.search(spec):
            return MASK
        return mask_url_passwords(spec)
    return spec
