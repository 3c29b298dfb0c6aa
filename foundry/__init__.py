"""Foundry: a job queue and cache for Python web frameworks."""
