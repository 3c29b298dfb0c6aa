"""Ready-made middleware and integrations, built on the public ``foundry`` names only."""
