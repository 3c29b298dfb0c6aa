"""Foundry side by side with its peers: ``./dev bench peers`` (``python -m bench.peers``).

The peers live in their own venv (``.venv-peers``, from ``bench/peers/requirements.txt``), never
in Foundry's dependencies. Every system runs the same job bodies (``bodies``), on the same
throwaway redis-server, with 2 worker processes at its default settings; the repetitions
alternate between the systems so that a change in the machine's load touches all of them.
Modules under ``bench.peers`` import only the standard library unless they are one system's app.
"""
