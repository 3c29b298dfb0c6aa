"""The parts of a multi-host Redis URL (``redis+sentinel://``, ``redis+cluster://``) that
Sentinel and Cluster read alike: the comma-separated hosts and the quoted login."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

#: The schemes of a Sentinel URL (``sentinel.py``), known without importing its module: a
#: process on a plain ``redis://`` URL never loads it.
SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")


def unquoted(text: str | None) -> str | None:
    """A URL's user or password, percent-decoded; ``None`` when absent or empty."""
    return unquote(text) if text else None


def host_list(text: str, default_port: int, what: str, example: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port...`` as pairs; a port left out is ``default_port``. A malformed
    item raises ``ValueError`` naming it as ``what`` and showing ``example``."""
    hosts = []
    for item in text.split(","):
        parts = urlsplit(f"redis://{item}")
        try:
            port = parts.port or default_port
        except ValueError:
            port = 0
        if not parts.hostname or port == 0:
            raise ValueError(
                f"{what} {item!r}: give each {what} as host:port, separated by commas ({example})"
            )
        hosts.append((parts.hostname, port))
    return tuple(hosts)
