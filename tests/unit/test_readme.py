"""The README is the user's page: short, and plain about the delivery contract."""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_readme_states_the_at_least_once_contract_and_links_the_guarantees() -> None:
    assert "at least once, not exactly once" in README
    assert "runs again" in README
    assert "(docs/guarantees.md)" in README
    assert "complete none twice" not in README


def test_the_readme_says_where_results_go_and_what_needs_a_queue() -> None:
    assert "kept for one" in README  # the completed record, for how long
    assert "foundry.SoftTimeLimitExceeded" in README
    assert "asks first" in README  # queue purge
    assert "No `failed` command needs `--queue`" in README
