"""Ids minted ahead in blocks: never handed out twice, by threads or by a forked child."""

from __future__ import annotations

import os
import re
import threading

from foundry.domain import new_job_id
from foundry.domain.job import _MINTED, new_job_ids


def test_minted_ids_are_22_url_safe_characters_all_different() -> None:
    ids = [new_job_id() for _ in range(1000)]  # several blocks

    assert len(set(ids)) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", job_id) for job_id in ids)


def test_no_minted_id_begins_with_a_dash_so_a_shell_never_reads_it_as_an_option() -> None:
    ids = new_job_ids(20_000) + [new_job_id() for _ in range(20_000)]  # a dash leads 1 in 64

    assert [job_id for job_id in ids if job_id.startswith("-")] == []


def test_threads_taking_ids_from_one_block_never_take_the_same_one() -> None:
    taken: list[list[str]] = [[] for _ in range(4)]

    def take(into: list[str]) -> None:
        into.extend(new_job_id() for _ in range(2000))

    threads = [threading.Thread(target=take, args=(into,)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [job_id for into in taken for job_id in into]
    assert len(set(every)) == len(every) == 8000


def test_a_forked_child_never_hands_out_the_ids_its_parent_minted_ahead() -> None:
    new_job_id()
    if not _MINTED:  # that was its block's last id: the next one starts a block
        new_job_id()
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first ids, to the parent
        try:
            os.write(writing, "".join(new_job_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)

    parent = [new_job_id() for _ in range(3)]
    assert len(child) == 66
    assert not {child[start : start + 22] for start in (0, 22, 44)} & set(parent)
