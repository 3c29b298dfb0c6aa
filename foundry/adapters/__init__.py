"""Adapters: the memory and Redis implementations of the ports, and the shared codec."""
