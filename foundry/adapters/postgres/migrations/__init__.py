"""Foundry's schema as versioned SQL files, ``NNNN_name.sql``, applied in order by
``foundry.adapters.postgres.migrator`` (``foundry migrate``).

Each file runs once, in one transaction, with the search path set to Foundry's schema: it
names its tables without a schema. A file, once released, never changes; a change to the
schema is a new file, and it keeps what earlier releases wrote readable (add columns with
defaults, never drop what an older worker still reads).
"""
