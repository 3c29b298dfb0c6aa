"""In-process adapters: the embedded default, and the fakes tests use."""

from adapters.memory.queue import MemoryQueue

__all__ = ["MemoryQueue"]
