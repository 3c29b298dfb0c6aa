"""In-process adapters: the embedded default, and the fakes tests use."""

from foundry.adapters.memory.queue import MemoryQueue

__all__ = ["MemoryQueue"]
