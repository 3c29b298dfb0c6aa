"""Errors of the PostgreSQL adapters that the domain's do not already name."""

from __future__ import annotations

from foundry.domain import ConfigurationError, FoundryError


class SchemaOutdated(ConfigurationError):
    """The database's Foundry schema is older than this Foundry needs: run ``foundry migrate``."""


class MissingPrivileges(ConfigurationError):
    """The role may not use some of Foundry's tables; the message says what to grant."""


class MigrationFailed(FoundryError):
    """A migration file failed; its transaction rolled back, so the schema is as it was."""
