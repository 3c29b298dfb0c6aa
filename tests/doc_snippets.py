"""The code blocks of the README and of docs/*.md, for the tests that keep them honest."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[1]
#: The user's pages: the README and every page of docs/.
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)


@attrs.frozen
class Snippet:
    """One fenced code block: its page, its place on it and its code, dedented."""

    page: str
    index: int
    lang: str
    code: str

    @property
    def name(self) -> str:
        """``page#n``, the n-th block of its language on the page (from 0)."""
        return f"{self.page}#{self.lang}{self.index}"


def snippets(lang: str = "python") -> list[Snippet]:
    """Every block of ``lang`` on the user's pages, in page order."""
    found: list[Snippet] = []
    for page in PAGES:
        blocks = [m for m in _FENCE.finditer(page.read_text()) if m.group("lang") == lang]
        for index, match in enumerate(blocks):
            width = len(match.group("indent"))
            code = "\n".join(line[width:] for line in match.group("body").splitlines())
            found.append(Snippet(str(page.relative_to(ROOT)), index, lang, code + "\n"))
    return found
