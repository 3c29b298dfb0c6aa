"""Application services: dispatching, the job registry and the prefork pool."""
