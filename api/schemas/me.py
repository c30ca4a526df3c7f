"""Response shape of `GET /v1/me`: who the token speaks for, and what it may do where."""

from pydantic import BaseModel, ConfigDict, Field

from persistence.accounts import ROLE_PERMISSIONS, Caller, Profile


class MyTeamOut(BaseModel):
    team_id: int
    name: str
    role: str = Field(description="owner, admin, editor, viewer or finance")
    permissions: list[str] = Field(
        description="What the role allows in this team: dwh.transfer.view, dwh.transfer.edit"
    )


class MeOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": 3,
                    "email": "me@acme.test",
                    "scopes": ["dwh_transfers_read", "dwh_transfers_write"],
                    "teams": [
                        {
                            "team_id": 1,
                            "name": "acme",
                            "role": "owner",
                            "permissions": ["dwh.transfer.edit", "dwh.transfer.view"],
                        }
                    ],
                }
            ]
        }
    )

    user_id: int
    email: str
    scopes: list[str] = Field(description="The token's scopes.")
    teams: list[MyTeamOut] = Field(description="The user's teams, by id, with the role in each.")

    @classmethod
    def of(cls, caller: Caller, profile: Profile) -> "MeOut":
        return cls(
            user_id=profile.user_id,
            email=profile.email,
            scopes=sorted(caller.scopes),
            teams=[
                MyTeamOut(
                    team_id=t.team_id,
                    name=t.team_name,
                    role=t.role,
                    permissions=sorted(ROLE_PERMISSIONS.get(t.role, frozenset())),
                )
                for t in profile.teams
            ],
        )
