"""The demo: a small app of CPU-bound handlers, and what `foundry demo` does with it."""
