"""Request and response shapes of the team secret endpoints: the value goes in, never out."""

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import UtcTimestamp
from persistence.models import TeamSecret

SECRET_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
MAX_SECRET_BYTES = 65_536


class PutSecretRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"value": "s3cr3t-p4ssw0rd"}]}
    )

    value: str = Field(
        min_length=1,
        max_length=MAX_SECRET_BYTES,
        description="Write-only: stored encrypted, never returned by any endpoint.",
    )


class SecretOut(BaseModel):
    """A secret as callers see it: its name and history, never its value."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "WAREHOUSE_PASSWORD",
                    "reference": "${WAREHOUSE_PASSWORD}",
                    "created_time": "2024-02-01T09:00:00.000Z",
                    "created_user_id": 3,
                    "updated_time": "2024-02-03T10:30:00.000Z",
                    "updated_user_id": 3,
                }
            ]
        }
    )

    name: str
    reference: str = Field(description="How a connector option refers to it.")
    created_time: UtcTimestamp
    created_user_id: int | None
    updated_time: UtcTimestamp
    updated_user_id: int | None

    @classmethod
    def of(cls, secret: TeamSecret) -> "SecretOut":
        return cls(
            name=secret.name,
            reference=f"${{{secret.name}}}",
            created_time=secret.created_time,
            created_user_id=secret.created_user_id,
            updated_time=secret.updated_time,
            updated_user_id=secret.updated_user_id,
        )
