"""Entry points: the CLI, the demo and the Container (the one composition root)."""
