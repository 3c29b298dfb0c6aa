"""The floor: what one Redis round trip costs on this machine, with and without redis-py.

No Foundry code runs here. These figures bound every single-call path:
a single ``dispatch`` can never beat one ``EVALSHA`` through the client.
"""

from __future__ import annotations

import socket

import redis

from bench.env import Env
from bench.harness import Metric, Sample, Workload, stopwatch

_SCRIPT = "return redis.call('LPUSH', KEYS[1], ARGV[1])"


def _per_call_us(calls: int, seconds: float) -> float:
    return seconds / calls * 1e6


def _redis_py(client: redis.Redis, key: str, calls: int) -> float:
    with stopwatch() as elapsed:
        for _ in range(calls):
            client.lpush(key, b"x")
    return _per_call_us(calls, elapsed())


def _evalsha(client: redis.Redis, key: str, calls: int) -> float:
    sha = client.script_load(_SCRIPT)
    with stopwatch() as elapsed:
        for _ in range(calls):
            client.evalsha(sha, 1, key, "x")
    return _per_call_us(calls, elapsed())


def _pipelined(client: redis.Redis, key: str, calls: int) -> float:
    with stopwatch() as elapsed:
        pipe = client.pipeline(transaction=False)
        for _ in range(calls):
            pipe.lpush(key, b"x")
        pipe.execute()
    return _per_call_us(calls, elapsed())


def bare_socket_us(port: int, key: str, calls: int) -> float:
    """Microseconds per ``LPUSH key x`` round trip over a bare socket to ``port``."""
    command = f"*3\r\n$5\r\nLPUSH\r\n${len(key)}\r\n{key}\r\n$1\r\nx\r\n".encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with stopwatch() as elapsed:
            for _ in range(calls):
                sock.sendall(command)
                sock.recv(64)
        return _per_call_us(calls, elapsed())


def run_once(env: Env, _backend: str) -> Sample:
    """One sample of each round-trip cost."""
    calls = env.scale(5_000, 2_000)
    key = env.unique("floor")
    with env.client() as client:
        client.ping()  # connect outside the timed sections
        sample = {
            "bare": bare_socket_us(env.server.port, key, calls),
            "redis_py": _redis_py(client, key, calls),
            "evalsha": _evalsha(client, key, calls),
            "pipelined": _pipelined(client, key, calls),
        }
        client.delete(key)
    return sample


WORKLOADS = (
    Workload(
        name="floor",
        title="Round-trip floor: LPUSH over a bare socket, through redis-py, EVALSHA, pipelined",
        backends=("redis",),
        metrics=(
            Metric("bare", "LPUSH, bare socket", "us/call", higher_is_better=False),
            Metric("redis_py", "LPUSH, redis-py", "us/call", higher_is_better=False),
            Metric("evalsha", "EVALSHA, redis-py", "us/call", higher_is_better=False),
            Metric("pipelined", "LPUSH, pipelined x N", "us/op", higher_is_better=False),
        ),
        run_once=run_once,
    ),
)
