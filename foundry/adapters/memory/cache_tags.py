"""The tag versions of one memory cache namespace, bounded like its values."""

from __future__ import annotations

from collections import OrderedDict


class TagVersions:
    """Tag name -> version, least recently used first, at most ``max_tags``. Not locked.

    A flush gives the tag the next version of one counter, so versions only grow; a tag
    dropped from the table reads the greatest dropped version (the floor), so dropping one
    only makes its values miss, and a flushed value never comes back.
    """

    def __init__(self, max_tags: int) -> None:
        self._versions: OrderedDict[str, int] = OrderedDict()
        self._max_tags = max_tags
        #: The version of every tag not in the table: the greatest version dropped from it.
        self._floor = 0
        #: The greatest version ever given (a flush gives the next).
        self._epoch = 0

    def version(self, name: str) -> int:
        """The current version of tag ``name``."""
        version = self._versions.get(name)
        if version is None:
            return self._floor
        self._versions.move_to_end(name)
        return version

    def flush(self, name: str) -> None:
        """Give tag ``name`` a version no value was written under, dropping the least
        recently used tag beyond ``max_tags``."""
        self._epoch += 1
        self._versions[name] = self._epoch
        self._versions.move_to_end(name)
        while len(self._versions) > self._max_tags:
            _, dropped = self._versions.popitem(last=False)
            self._floor = max(self._floor, dropped)

    def __len__(self) -> int:
        return len(self._versions)
