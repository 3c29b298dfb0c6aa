"""The FCALLs ``Packer`` writes are the bytes redis-py would send for the same command."""

from __future__ import annotations

from redis.connection import Encoder, PythonRespSerializer

from foundry.adapters.redis.runner import Arg, Packer

_FUNCTIONS = {"enqueue": "enqueue_v1"}


def _redis_py(*parts: Arg) -> bytes:
    encode = Encoder("utf-8", "strict", decode_responses=False).encode  # type: ignore[no-untyped-call]
    return b"".join(PythonRespSerializer(6000, encode).pack(*parts))  # type: ignore[no-untyped-call]


def test_each_kind_and_size_of_argument_is_packed_as_redis_py_packs_it() -> None:
    args: list[Arg] = ["", "0", "abc", "abcd", "é" * 600, b"", b"x" * 1023, b"y" * 1024]
    args += [b"z" * 70_000, 7, -12, 2**70]
    keys = ["{q}:jobs"]

    packed = Packer(_FUNCTIONS).pack("enqueue", keys, args)

    assert packed == _redis_py("FCALL", "enqueue_v1", 1, *keys, *args)


def test_a_call_of_more_than_a_thousand_arguments_counts_them_all() -> None:
    args: list[Arg] = [str(n) for n in range(1500)]

    packed = Packer(_FUNCTIONS).pack("enqueue", ["k"], args)

    assert packed == _redis_py("FCALL", "enqueue_v1", 1, "k", *args)


def test_kept_texts_are_found_only_for_texts() -> None:
    packer = Packer(_FUNCTIONS)
    packer.pack("enqueue", ["k"], ["1", "ab"])
    args: list[Arg] = [1, b"ab", "1", 10**20, str(10**20)]

    packed = packer.pack("enqueue", ["k"], args)

    assert packed == _redis_py("FCALL", "enqueue_v1", 1, "k", *args)


def test_a_plain_jobs_short_call_is_packed_as_redis_py_packs_it() -> None:
    from foundry.adapters.redis.enqueuing import ShortCalls  # noqa: PLC0415
    from foundry.adapters.redis.keys import KeyLayout  # noqa: PLC0415
    from foundry.domain import Job, RetryPolicy  # noqa: PLC0415

    layout = KeyLayout("p")
    short = ShortCalls("enqueue_v1", layout, "c0ffee")
    jobs = [Job("noop", queue="q"), Job("é", queue="r", retry=RetryPolicy(max_attempts=12))]
    blobs = [b"=noop", b"=\xc3\xa9" + b"x" * 2000]

    packed = [short.pack(job, blob) for job, blob in zip(jobs, blobs, strict=True)]

    head = ("FCALL", "enqueue_v1", 1)
    assert packed == [
        _redis_py(
            *head, *layout.queue(job.queue).first, "", "c0ffee", job.id, blob, str(job.max_attempts)
        )
        for job, blob in zip(jobs, blobs, strict=True)
    ]
