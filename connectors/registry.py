"""Every connector type by name, and parsing of a transfer's `source`/`destination` spec."""

from typing import Any, TypeVar

from pydantic import ValidationError

from connectors.base import ConnectorOptions, DestinationOptions, SourceOptions
from connectors.demo import DemoSourceOptions
from connectors.http import HttpSourceOptions
from connectors.postgresql import PostgresqlDestinationOptions
from connectors.sql import SqlSourceOptions
from connectors.sqlite import SqliteDestinationOptions

SOURCE_TYPES: dict[str, type[SourceOptions]] = {
    "demo": DemoSourceOptions,
    "http": HttpSourceOptions,
    "sql": SqlSourceOptions,
}
DESTINATION_TYPES: dict[str, type[DestinationOptions]] = {
    "sqlite": SqliteDestinationOptions,
    "postgresql": PostgresqlDestinationOptions,
}

OptionsT = TypeVar("OptionsT", bound=ConnectorOptions)


class InvalidConnectorSpec(ValueError):
    """A source or destination spec that cannot be used, with what is wrong."""


def parse_source(spec: dict[str, Any]) -> SourceOptions:
    return _parse("source", spec, SOURCE_TYPES)


def parse_destination(spec: dict[str, Any]) -> DestinationOptions:
    return _parse("destination", spec, DESTINATION_TYPES)


def _parse(kind: str, spec: dict[str, Any], registry: dict[str, type[OptionsT]]) -> OptionsT:
    kind_type = spec.get("type")
    options_model = registry.get(kind_type) if isinstance(kind_type, str) else None
    if options_model is None:
        known = ", ".join(sorted(registry))
        raise InvalidConnectorSpec(f"{kind}.type must be one of: {known}")
    try:
        return options_model.model_validate(spec)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join([kind, *(str(p) for p in err['loc'])])}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidConnectorSpec(problems) from None
