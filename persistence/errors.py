"""Domain errors the persistence layer raises; the API and the activities translate them."""


class PersistenceError(Exception):
    """Base of the errors below; `str()` is a message fit for a caller."""


class NotFoundError(PersistenceError):
    pass


class OverlapError(PersistenceError):
    """The range overlaps an incomplete backfill of the same transfer."""


class InvalidStateError(PersistenceError):
    """The object is in a state that does not allow the change."""


class IdempotencyKeyMismatch(PersistenceError):
    """The create's `Idempotency-Key` was used, within its lifetime, for another request."""
