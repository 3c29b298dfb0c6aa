"""The web dashboard (``foundry dashboard``): queues, workers, jobs and dead letters, with a
JSON API, over the ports only. Needs the ``dashboard`` extra (Starlette, Jinja2, uvicorn)."""
