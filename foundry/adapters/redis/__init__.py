"""Redis adapters: the production backend."""
