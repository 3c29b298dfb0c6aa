"""``Progress``: how far a running job says it is."""

from __future__ import annotations

import math

import attrs

from foundry.domain.text import storable

#: The longest note a progress report keeps.
MAX_NOTE_LENGTH = 200


def _fraction(_: object, __: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"progress must be a number from 0 to 1, got {value!r}")
    if not 0 <= value <= 1:
        raise ValueError(f"progress must be from 0 to 1, got {value}")


def _storable_note(value: str | None) -> str | None:
    return storable(value) if isinstance(value, str) else value  # else refused by _note


def _note(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_NOTE_LENGTH):
        raise ValueError(f"a progress note is a string of at most {MAX_NOTE_LENGTH} characters")


@attrs.frozen
class Progress:
    """A running job's own report: ``fraction`` done (0 to 1) and an optional short ``note``."""

    fraction: float = attrs.field(validator=_fraction)
    note: str | None = attrs.field(default=None, converter=_storable_note, validator=_note)

    def __str__(self) -> str:
        done = f"{self.fraction:.0%}"
        return f"{done} ({self.note})" if self.note else done
