"""``python -m foundry.entrypoints.cli``: the ``foundry`` command without the console script."""

from foundry.entrypoints.cli import main

main()
