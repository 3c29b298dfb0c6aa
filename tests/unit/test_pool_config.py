"""PoolConfig: bad values are refused naming the setting."""

import pytest

from foundry.application.pool.config import PoolConfig
from foundry.domain import ConfigurationError


def test_children_run_at_the_parents_priority_by_default() -> None:
    assert PoolConfig().child_nice == 0


@pytest.mark.parametrize("value", [-1, 20, True, 2.5])
def test_a_child_nice_outside_0_to_19_is_refused_naming_the_setting(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"child_nice must be an int from 0 to 19"):
        PoolConfig(child_nice=value)  # type: ignore[arg-type]
