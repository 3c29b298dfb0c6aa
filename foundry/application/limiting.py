"""Limits as users write them (``rate_limit="100/m"``, ``concurrency=5``,
``limit_key="tenant:{tenant_id}"``), turned into a job's ``Limit``."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

import attrs

from foundry.domain import InvalidJob, Limit, Rate


def limit_of(
    default_key: str,
    base: Limit | None,
    *,
    rate_limit: str | Rate | None = None,
    concurrency: int | None = None,
    limit_key: str | None = None,
) -> Limit | None:
    """``base`` (a handler's declared limit, or ``None``) with the given parts replaced; the
    key is ``limit_key``, else ``base``'s, else ``default_key`` (the handler's name).
    Raises ``InvalidJob`` naming a bad part."""
    if rate_limit is None and concurrency is None and limit_key is None:
        return base
    rate = None if rate_limit is None else _rate(rate_limit)
    if base is None:
        if rate is None and concurrency is None:
            raise InvalidJob(
                "limit",
                f"limit_key={limit_key!r} names what a limit is shared by, and {default_key!r} "
                "declares no limit: give concurrency= or rate_limit= with it",
            )
        return Limit(default_key if limit_key is None else limit_key, concurrency, rate)
    changes: dict[str, Any] = {"key": base.key if limit_key is None else limit_key}
    if concurrency is not None:
        changes["concurrency"] = concurrency
    if rate is not None:
        changes["rate"] = rate
    return attrs.evolve(base, **changes)


def _rate(rate_limit: str | Rate) -> Rate:
    """A rate as written (``"100/m"`` or a ``Rate``; ``parse`` names any other value's
    mistake), checked that a key can keep it."""
    rate = rate_limit if isinstance(rate_limit, Rate) else Rate.parse(rate_limit)
    return rate.kept()


def key_fields(template: str, field: str = "limit_key") -> set[str]:
    """The payload fields a key template names in braces (``{user[id]}`` names ``user``);
    raises ``InvalidJob`` about ``field`` for a template that cannot be read or that has a
    positional field (``{}``, ``{0}``), which no payload fills."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise InvalidJob(field, f"{template!r} is not a key template: {error}") from None
    heads = {re.split(r"[.\[]", name, maxsplit=1)[0] for name in names}
    if any(head == "" or head.isdigit() for head in heads):
        raise InvalidJob(
            field,
            f"{template!r} has a positional field ({{}} or {{0}}), which no payload fills; "
            "name a payload field in braces, e.g. 'tenant:{tenant_id}'",
        )
    return heads


def fill_key(template: str, payload: Mapping[str, Any], field: str) -> str:
    """``template`` filled from ``payload``; raises ``InvalidJob`` about ``field`` when a
    field it names is missing or cannot be read as it says (``{user[id]}`` of a number)."""
    try:
        return template.format(**payload)
    except (LookupError, AttributeError, TypeError, ValueError) as error:
        raise InvalidJob(
            field,
            f"key template {template!r} cannot be filled from the payload ({error!r:.120}); "
            "name only fields every payload of this handler has in {braces}",
        ) from error


def filled(limit: Limit | None, payload: Mapping[str, Any]) -> Limit | None:
    """``limit`` with its key template filled from ``payload``; raises ``InvalidJob`` naming
    a field the payload lacks, or a filled key that is too long."""
    if limit is None or "{" not in limit.key:
        return limit
    return attrs.evolve(limit, key=fill_key(limit.key, payload, "limit_key"))
