"""Errors of the PostgreSQL adapters that the domain's do not already name."""

from __future__ import annotations

from foundry.domain import ConfigurationError, FoundryError


class SchemaOutdated(ConfigurationError):
    """The database's Foundry schema is older than this Foundry needs: run ``foundry migrate``."""


class MissingPrivileges(ConfigurationError):
    """The role may not use some of Foundry's tables; the message says what to grant."""


class NotSupported(FoundryError, NotImplementedError):
    """A capability the PostgreSQL queue does not offer (yet); ``capability`` names it."""

    def __init__(self, capability: str, what: str) -> None:
        super().__init__(
            f"the PostgreSQL queue does not support {what} yet; use QUEUE_DRIVER=redis for it"
        )
        self.capability = capability


def unsupported(capability: str, what: str) -> NotSupported:
    """The error for a capability not built on PostgreSQL."""
    return NotSupported(capability, what)
