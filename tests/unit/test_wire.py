import multiprocessing
import os
import pickle
import struct
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from foundry.application.context import JobContext
from foundry.application.pool.wire import (
    FRAME_WAIT_S,
    PROGRESS,
    BadFrame,
    Channel,
    FrameReader,
    decode_progress,
    decode_reply,
    decode_task,
    encode_progress,
    encode_reply,
    encode_task,
    framed,
    write_all,
)
from foundry.domain import ErrorInfo, Job, Progress
from foundry.ports import Lease

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("no pickling here")


class BrokenOnLoad:
    def __reduce__(self) -> Any:
        return (_explode, ())


def _explode() -> None:
    raise RuntimeError("cannot rebuild")


def test_a_task_carries_only_what_the_child_needs() -> None:
    job = Job("resize", payload={"w": 3}, queue="images", metadata={"trace": "t-1"})

    task = decode_task(encode_task(Lease(job, "tok", 2, T0, fence=9)))

    assert task == (job.id, "resize", {"w": 3}, 2, "images", 0.0, "tok", {"trace": "t-1"}, 9)


def test_a_reply_round_trips_its_result_runtime_rss_pid_and_lease_token() -> None:
    reply = decode_reply(
        encode_reply(True, {"n": 1}, 0.25, 1 << 20, pid=4242, token="tok.2", ended=0.0)
    )

    assert (reply.ok, reply.value, reply.runtime_s, reply.rss) == (True, {"n": 1}, 0.25, 1 << 20)
    assert (reply.pid, reply.token) == (4242, "tok.2")


def test_a_result_that_cannot_be_pickled_fails_the_attempt_naming_its_type() -> None:
    reply = decode_reply(encode_reply(True, Unpicklable(), 0.1, 0, pid=1, token="t", ended=0.0))

    assert not reply.ok
    assert reply.error.type == "foundry.domain.errors.InvalidResult"
    assert "of type Unpicklable" in reply.error.message
    assert "no pickling here" in reply.error.message


def test_a_result_that_cannot_be_unpickled_fails_the_attempt() -> None:
    reply = decode_reply(encode_reply(True, BrokenOnLoad(), 0.1, 0, pid=1, token="t", ended=0.0))

    assert not reply.ok
    assert reply.error.type == "foundry.domain.errors.InvalidResult"
    assert "cannot rebuild" in reply.error.message


def test_a_value_that_cannot_be_unpickled_becomes_a_description_and_a_failure_stays_one() -> None:
    frame = encode_reply(False, BrokenOnLoad(), 0.1, 0, pid=1, token="t", ended=0.0)

    reply = decode_reply(frame)

    assert not reply.ok
    assert isinstance(reply.value, ErrorInfo)
    assert "cannot rebuild" in reply.error.message


def test_an_error_info_crosses_the_pipe_intact() -> None:
    error = ErrorInfo.from_exception(ValueError("bad"), traceback="tb", attempt=1)

    reply = decode_reply(encode_reply(False, error, 0.0, 0, pid=1, token="t", ended=0.0))

    assert reply.error == error
    assert pickle.loads(pickle.dumps(error)) == error


def test_a_progress_frame_carries_the_lease_token_and_the_report() -> None:
    frame = encode_progress("tok.1", Progress(0.25, "a quarter"))

    assert frame[:1] == PROGRESS
    assert decode_progress(frame) == ("tok.1", Progress(0.25, "a quarter"))


@pytest.mark.parametrize(
    ("fraction", "note"), [(-0.1, None), (1.5, None), (float("nan"), None), (0.5, "x" * 201)]
)
def test_a_bad_progress_report_is_refused_where_it_is_made(
    fraction: float, note: str | None
) -> None:
    context = JobContext("j", "task", "default", 1)

    with pytest.raises(ValueError, match="progress"):
        context.progress(fraction, note)


def test_the_frame_reader_reads_what_a_connection_sends_and_what_framed_writes() -> None:
    sender, receiver = multiprocessing.Pipe()
    reader = FrameReader(receiver.fileno())
    big = bytes(range(256)) * 1000  # more than a pipe holds: written while it is read

    def send() -> None:
        sender.send_bytes(b"first")
        write_all(sender.fileno(), framed(b"second") + framed(b"") + framed(big))
        sender.send_bytes(b"last")
        sender.close()

    writer = threading.Thread(target=send)
    writer.start()
    frames = [reader.read() for _ in range(5)]
    writer.join()

    assert frames == [b"first", b"second", b"", big, b"last"]
    with pytest.raises(EOFError):
        reader.read()


def test_a_frame_cut_short_by_a_closed_pipe_is_the_end_of_the_pipe() -> None:
    sender, receiver = multiprocessing.Pipe()
    reader = FrameReader(receiver.fileno())

    write_all(sender.fileno(), framed(b"0123456789")[:8])
    sender.close()

    with pytest.raises(EOFError):
        reader.read()


def test_a_channel_reads_one_frame_at_a_time_and_leaves_the_next_in_the_socket() -> None:
    parent, child = Channel.pair()
    big = bytes(range(256)) * 1000  # more than a socket holds: written while it is read

    def send() -> None:
        for frame in (b"a", b"", big):
            child.send_bytes(frame)

    writer = threading.Thread(target=send)
    writer.start()

    frames = [parent.recv_bytes() for _ in range(3)]
    writer.join()
    child.send_bytes(b"next")

    assert frames == [b"a", b"", big]
    assert parent.poll()  # the frame after them is still in the socket for the selector
    assert parent.recv_bytes() == b"next"
    assert not parent.poll()


def test_a_channel_reads_what_a_multiprocessing_connection_sends() -> None:
    sender, receiver = multiprocessing.Pipe()
    channel = Channel(os.dup(receiver.fileno()))

    def send() -> None:
        sender.send_bytes(b"1")
        sender.send_bytes(bytes(10**5))

    writer = threading.Thread(target=send)
    writer.start()

    frames = [channel.recv_bytes(), channel.recv_bytes()]
    writer.join()

    assert frames == [b"1", bytes(10**5)]


def test_a_closed_channel_is_the_end_of_the_other_and_refuses_its_own_use() -> None:
    parent, child = Channel.pair()
    child.close()
    child.close()  # again: nothing

    assert parent.poll()  # the end of the pipe is there to read
    with pytest.raises(EOFError):
        parent.recv_bytes()
    assert child.closed
    assert not parent.closed
    with pytest.raises(OSError, match="closed"):
        child.fileno()


def test_a_bound_channel_keeps_a_frame_read_in_part_and_completes_it_as_the_rest_comes() -> None:
    parent, child = Channel.pair()
    parent.bound_reads()
    big = framed(bytes(range(256)) * 100)
    wire = framed(b"small") + _large_framed(b"large") + big
    try:
        got = []
        for start in range(0, len(wire), 7):  # seven bytes at a time
            write_all(child.fileno(), wire[start : start + 7])
            while (frame := parent.read_frame()) is not None:
                got.append(frame)
        assert got == [b"small", b"large", bytes(range(256)) * 100]
        assert parent.read_frame() is None  # nothing there: no wait
        assert parent.overdue(float("inf")) is None  # nothing read in part
        assert not parent.poll()
    finally:
        parent.close()
        child.close()


@pytest.mark.parametrize(
    "start", [struct.pack("!i", 1000) + b"x", b"\x00\x00", struct.pack("!i", -1) + b"\x00"]
)
def test_a_frame_not_whole_by_its_deadline_is_a_bad_frame(start: bytes) -> None:
    parent, child = Channel.pair()
    parent.bound_reads()
    try:
        write_all(child.fileno(), start)
        assert parent.read_frame() is None
        assert parent.poll()  # a frame is being answered: the child has written
        assert parent.overdue(time.monotonic()) is None
        error = parent.overdue(time.monotonic() + FRAME_WAIT_S + 1.0)
        assert isinstance(error, BadFrame)
        assert "came in time" in str(error)
    finally:
        parent.close()
        child.close()


def test_a_frame_length_past_the_limit_is_a_bad_frame_at_once() -> None:
    parent, child = Channel.pair()
    parent.bound_reads()
    try:
        write_all(child.fileno(), struct.pack("!i", 0x7FFFFFFF) + b"x")
        with pytest.raises(BadFrame, match="over the"):
            parent.read_frame()
    finally:
        parent.close()
        child.close()


def _large_framed(frame: bytes) -> bytes:
    """``frame`` with the length prefix of one over 2 GiB."""
    return struct.pack("!i", -1) + struct.pack("!Q", len(frame)) + frame
