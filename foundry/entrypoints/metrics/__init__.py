"""Prometheus metrics: a pool's job events (``foundry work --metrics-port``) and the backend's
queue gauges (``foundry metrics``). Needs the ``metrics`` extra (prometheus-client)."""
