"""The README is the user's page: short, and plain about the delivery contract."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import attrs
import click

import foundry
from foundry.entrypoints.dashboard.security import TOKEN_VARIABLE
from foundry.entrypoints.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


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


def _guide() -> str:
    return README.split("## Five-minute guide", 1)[1].split("## Configuration", 1)[0]


def test_the_guide_names_every_name_foundry_exports() -> None:
    fenced = re.findall(r"```\w*\n(.*?)```", _guide(), re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```\w*\n.*?```", "", _guide(), flags=re.S))
    named = {word for code in (*fenced, *inline) for word in re.findall(r"\w+", code)}

    assert sorted(set(foundry.__all__) - named) == []


#: ``foundry.<word>`` on the pages that is not a name of the package: its modules (imported
#: by their full path) and the metadata keys Foundry writes.
NOT_NAMES = {"contrib", "entrypoints", "domain", "ports", "application", "adapters"}
METADATA_KEYS = {"batch", "result_as"}


def test_every_foundry_name_the_pages_use_is_exported() -> None:
    pages = [README, *(page.read_text() for page in (ROOT / "docs").glob("*.md"))]
    used = {name for page in pages for name in re.findall(r"\bfoundry\.(\w+)", page)}

    missing = sorted(used - NOT_NAMES - METADATA_KEYS - set(foundry.__all__))

    assert missing == []


def _table_defaults(page: str) -> dict[str, str]:
    """Each variable of the page's settings table and its default cell (``A / B`` rows split)."""
    defaults: dict[str, str] = {}
    for names, default in re.findall(r"^\| (`[A-Z_]+`.*?) \| (.+?) \| .* \|$", page, re.M):
        variables = re.findall(r"`([A-Z_]+)`", names)
        cells = default.split(" / ")
        for index, variable in enumerate(variables):
            defaults[variable] = cells[index] if len(cells) == len(variables) else default
    return defaults


def _documented_default(value: object) -> str:
    if isinstance(value, bool):  # as the variable is written: true / false
        return f"`{str(value).lower()}`"
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    return f"`{seconds:g}`" if isinstance(seconds, float) else f"`{seconds}`"


def test_the_configuration_tables_give_every_setting_with_its_default() -> None:
    cli_variables = set(_command_variables()) | {TOKEN_VARIABLE}
    readme = _table_defaults(README.split("## Configuration", 1)[1])
    postgres = _table_defaults((ROOT / "docs" / "postgres.md").read_text())

    assert set(readme) == set(Settings.variables()) | cli_variables
    for field in attrs.fields(Settings):
        default = field.default
        if default is None or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            continue
        variable = field.name.upper()
        assert readme[variable] == _documented_default(default), variable
        if variable in postgres:
            assert postgres[variable] == _documented_default(default), variable


def test_the_readme_names_every_package_dev_installs_with_apt() -> None:
    dev = (ROOT / "dev").read_text()
    packages = {
        name
        for line in re.findall(r"apt_install ([a-z0-9 -]+)$", dev, re.M)
        for name in line.split()
    }

    assert sorted(name for name in packages if f"`{name}`" not in README) == []


def test_every_test_the_pages_cite_exists() -> None:
    pages = [README, *(page.read_text() for page in (ROOT / "docs").glob("*.md"))]
    cited = {(path, name) for page in pages for path, name in re.findall(_CITED, page)}

    missing = [
        f"{path}::{name}" if name else path
        for path, name in sorted(cited)
        if not (ROOT / path).exists() or (name and not _defines(path, name))
    ]

    assert missing == []


#: ``tests/<path>.py`` and, when given, ``::<test>``.
_CITED = r"(tests/[\w/]+\.py)(?:::(\w+))?"


def _defines(path: str, name: str) -> bool:
    """The module defines ``name``: a test function, a class, or a name bound to a TestCase."""
    source = (ROOT / path).read_text()
    return re.search(rf"^\s*(?:async def |def |class )?{name}\b", source, re.M) is not None


def _command_variables() -> dict[str, set[str]]:
    """Each variable a ``foundry`` command's option reads, and the commands that read it."""
    from foundry.entrypoints.cli import cli  # noqa: PLC0415

    context = click.Context(cli)
    readers: dict[str, set[str]] = {}
    for name in cli.list_commands(context):
        command = cli.get_command(context, name)
        assert command is not None
        subcommands = command.commands.values() if isinstance(command, click.Group) else []
        for each in (cli, command, *subcommands):
            for param in each.params:
                if isinstance(param, click.Option) and isinstance(param.envvar, str):
                    readers.setdefault(param.envvar, set()).add(name)
    return readers


def test_each_variable_a_command_reads_names_that_command_in_the_readme() -> None:
    rows = dict(re.findall(r"^\| `(FOUNDRY_\w+)` \| .+? \| (.*) \|$", README, re.M))

    unnamed = {
        variable: sorted(name for name in names if f"`foundry {name}`" not in rows[variable])
        for variable, names in _command_variables().items()
        if variable != "FOUNDRY_LOG_LEVEL"  # every command's --log-level
    }

    assert unnamed == {variable: [] for variable in unnamed}


def test_the_readme_s_more_list_links_every_page_of_docs() -> None:
    more = README.split("## More", 1)[1]

    unlisted = [
        page.name for page in (ROOT / "docs").glob("*.md") if f"(docs/{page.name})" not in more
    ]

    assert sorted(unlisted) == []


def test_every_link_of_the_pages_leads_to_a_file_and_heading_that_exist() -> None:
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").rglob("*.md")]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            path, _, anchor = target.partition("#")
            if target.startswith(("http://", "https://")):
                continue
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (anchor and anchor not in _anchors(linked)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")

    assert broken == []


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings."""
    headings = re.findall(r"^#+ (.*)$", page.read_text(), re.M) if page.suffix == ".md" else []
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings
    }
