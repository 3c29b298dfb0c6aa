"""Every ``foundry`` command the README and docs/*.md show exists, with the options shown."""

from __future__ import annotations

import re
import shlex

import click
import pytest

from foundry.entrypoints.cli import cli
from tests.doc_snippets import PAGES, ROOT, snippets

#: Words of a usage line that stand for something: ``[--port 8080]``, ``...``.
_PLACEHOLDER = re.compile(r"\[.*|.*\]|\.\.\.")


def _from_blocks() -> list[tuple[str, str]]:
    found = []
    for snippet in snippets("bash"):
        for line in snippet.code.replace("\\\n", " ").splitlines():
            command = re.search(r"(?:^|\s|\$\()foundry ([^|;&)#]+)", line.split(" # ")[0])
            if command:
                found.append((snippet.name, command.group(1)))
    return found


def _from_text() -> list[tuple[str, str]]:
    return [
        (str(page.relative_to(ROOT)), span)
        for page in PAGES
        for span in re.findall(r"`foundry ([^`]+)`", page.read_text())
    ]


COMMANDS = _from_blocks() + _from_text()


def _options(command: click.Command) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


def _problems(words: list[str]) -> list[str]:
    context = click.Context(cli)
    command: click.Command = cli
    options = _options(cli)
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        found = command.get_command(context, words[0])
        if found is None:
            return [f"no command {words[0]!r}"]
        command, words = found, words[1:]
        options |= _options(command)
    given = [word.split("=")[0] for word in words if word.startswith("--") and word != "--"]
    return [f"no option {option}" for option in given if option not in options]


def test_the_pages_show_commands() -> None:
    assert len(COMMANDS) > 40


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[line for _, line in COMMANDS])
def test_each_command_the_pages_show_exists_with_its_options(page: str, line: str) -> None:
    words = [word for word in shlex.split(line) if not _PLACEHOLDER.fullmatch(word)]
    # ``pause|resume``: each of them; an option's value ``list|show`` is left as it is.
    chosen = next((word for word in words if "|" in word), None)
    variants = (
        [words]
        if chosen is None
        else [
            [alternative if word == chosen else word for word in words]
            for alternative in chosen.split("|")
        ]
    )

    assert [problem for words in variants for problem in _problems(words)] == [], f"{page}: {line}"


def _command(words: list[str]) -> click.Command:
    context = click.Context(cli)
    command: click.Command = cli
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        found = command.get_command(context, words[0])
        assert found is not None, words[0]
        command, words = found, words[1:]
    return command


#: ``[--port 8080]`` in a usage line: an option shown with its default (``[--limit N]``, a
#: placeholder, shows none).
_SHOWN_DEFAULT = re.compile(r"\[(--[\w-]+) ([^\]\sA-Z]+)\]")
DEFAULTS = [
    (line, option, value) for _, line in COMMANDS for option, value in _SHOWN_DEFAULT.findall(line)
]


def test_the_pages_show_some_defaults() -> None:
    assert len(DEFAULTS) >= 5


@pytest.mark.parametrize(
    ("line", "option", "shown"), DEFAULTS, ids=[f"{o} {v}" for _, o, v in DEFAULTS]
)
def test_each_default_a_usage_line_shows_is_the_option_s(
    line: str, option: str, shown: str
) -> None:
    command = _command(line.split())
    (param,) = [param for param in command.params if option in param.opts]

    default = param.default
    assert (float(shown) if isinstance(default, int | float) else shown) == default, line
