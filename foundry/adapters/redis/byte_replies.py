"""Foundry's Redis code reads replies as bytes: a client built to decode them to text
(``decode_responses=True``, a common application default) is refused where it is handed in."""

from __future__ import annotations

from typing import Protocol, TypeVar

from foundry.domain import ConfigurationError


class _Encoded(Protocol):
    def get_encoder(self) -> object: ...


C = TypeVar("C", bound=_Encoded)


def bytes_replies(client: C, what: str) -> C:
    """``client`` unless it decodes replies to text: ``ConfigurationError`` naming ``what`` was
    given it and the fix."""
    if getattr(client.get_encoder(), "decode_responses", False):
        raise ConfigurationError(
            f"the Redis client given to {what} decodes replies to text (decode_responses="
            f"True); build {what}'s client with decode_responses=False (the default), or with "
            "foundry's connect()"
        )
    return client
