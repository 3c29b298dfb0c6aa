"""In-process adapters: the embedded default, and the fakes tests use."""
