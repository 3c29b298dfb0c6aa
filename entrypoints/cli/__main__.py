"""``python -m entrypoints.cli``: the ``foundry`` command without the console script."""

from entrypoints.cli import main

main()
