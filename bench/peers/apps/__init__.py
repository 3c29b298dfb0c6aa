"""One module per system: its tasks over the shared bodies, and ``send(body, kwargs)``.

``send`` enqueues one job the way that system's documentation shows (a coroutine for the
asyncio peers); ``start()``, where a module has it, connects before the timed sends. Each module
reads ``BENCH_REDIS_URL``. A peer's module runs only in the peers' venv.
"""

import os

# No default: the bench's own throwaway server, never a Redis someone else uses.
REDIS_URL = os.environ["BENCH_REDIS_URL"]
