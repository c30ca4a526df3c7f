"""The outbound network policy of connectors: which addresses a run may connect to.

Link-local and cloud-metadata addresses are always refused; loopback, private and other
non-global ranges only where `allowed_networks` (BACKFILLS_CONNECTOR_ALLOWED_NETWORKS) holds
them. The service's own databases (`protected_databases`) are never a connector target.
"""

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network


@dataclass(frozen=True)
class EgressPolicy:
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    protected_databases: tuple[str, ...] = ()
