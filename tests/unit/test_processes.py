import os
import sys
import threading
import time

import pytest

from foundry.application.pool.child import libc_prctl
from foundry.application.pool.processes import Process, ProcessWorkforce, fork
from foundry.application.pool.wire import Channel
from foundry.application.registry import JobRegistry


def exit_status(process: Process) -> int | None:
    process.join(30)
    return process.exitcode


def returns() -> None:
    pass


def exits_3() -> None:
    sys.exit(3)


def raises() -> None:
    raise RuntimeError("boom")


def reads_stdin() -> None:
    os._exit(0 if sys.stdin.read() == "" else 5)


def leaves_a_thread() -> None:
    def late() -> None:
        time.sleep(0.2)
        os._exit(7)  # the child waits for its non-daemon threads, as multiprocessing's does

    threading.Thread(target=late).start()


@pytest.mark.parametrize(
    ("target", "status"),
    [(returns, 0), (exits_3, 3), (raises, 1), (reads_stdin, 0), (leaves_a_thread, 7)],
)
def test_a_forked_child_exits_as_a_multiprocessing_process_does(
    target: object, status: int, capfd: pytest.CaptureFixture[str]
) -> None:
    process = fork(target, "child-1")  # type: ignore[arg-type]

    assert exit_status(process) == status
    process.close()
    if target is raises:
        assert "Process child-1:" in capfd.readouterr().err


def test_a_killed_child_reports_the_signal_and_the_parent_is_not_blocked_before() -> None:
    process = fork(lambda: time.sleep(60), "sleeper")
    process.join(0.05)

    assert process.poll() is None
    os.kill(process.pid, 9)
    assert exit_status(process) == -9


def test_the_parent_loads_prctl_before_it_forks_so_no_child_imports_ctypes() -> None:
    libc_prctl.cache_clear()
    workforce = ProcessWorkforce(
        JobRegistry(), child_init=None, max_rss=None, inherited=list, on_spawn=lambda *_: None
    )
    try:
        workforce.spawn(0)
        loaded = libc_prctl.cache_info().currsize
    finally:
        workforce.close(5.0)

    assert loaded == 1


def test_a_child_replaced_in_its_slot_has_its_pipe_sentinel_and_shared_memory_closed() -> None:
    workforce = ProcessWorkforce(
        JobRegistry(), child_init=None, max_rss=None, inherited=list, on_spawn=lambda *_: None
    )
    try:
        workforce.spawn(0)
        gone = workforce.children[0]
        workforce.kill(0)
        workforce.exitcode(0)

        workforce.spawn(0)

        assert (gone.conn.closed, gone.process.sentinel, gone.fence.closed) == (True, -1, True)
    finally:
        workforce.close(5.0)


def test_a_channel_or_sentinel_left_open_is_closed_with_a_resource_warning() -> None:
    left, right = Channel.pair()
    right.close()
    process = fork(returns, "child-1")
    process.join(30)

    with pytest.warns(ResourceWarning, match="unclosed pool channel"):
        left.__del__()
    with pytest.warns(ResourceWarning, match="unclosed exit sentinel"):
        process.__del__()

    assert (left.closed, process.sentinel) == (True, -1)
