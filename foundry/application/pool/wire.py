"""The pipe protocol between the pool's parent and a child: one pickled tuple per message.

Parent to child: a task ``(job_id, name, payload, attempt, queue, soft_timeout_s,
lease_token, metadata, fence)`` or ``STOP``; a task may be sent while the child still runs
the one before it (it waits in the pipe). Child to parent: ``READY`` once, then one reply per
task: a fixed header ``(ok, runtime_s, rss_bytes, pid, ended)``, the task's lease token, and
the pickled result or ``ErrorInfo`` (before it, any number of ``PROGRESS`` frames: the lease
token, a fraction and a note), or ``SKIPPED`` and the token for a task it did not start (its
start-by deadline had passed), so a value that cannot be (un)pickled still leaves a
readable reply: a failure, for a result the parent cannot receive. ``ended`` is the child's
monotonic time when the job ended: a task waiting behind it starts then. The pid and the token let
the parent refuse an answer from any process but its child, about any job but the one that
child runs. Frames are length-prefixed as ``multiprocessing.connection`` does it; a child never
decodes a job record, only these fields. The two ends are a blocking socket pair (``Channel``).

A frame is at most ``MAX_FRAME_BYTES`` (a reply whose pickled value would be larger carries an
``InvalidResult`` instead), and the parent must have one whole within ``FRAME_WAIT_S`` plus a
second per ``FRAME_RATE`` bytes of it from its first byte: a frame over the limit, or one
that stops short, was written by some other process holding the pipe (``BadFrame``). The
parent never waits for a frame's rest (``Channel.read_frame``): it keeps what came and reads
on when more does, so a slow frame holds up no other child's.
"""

from __future__ import annotations

import math
import os
import pickle
import select
import socket
import struct
import time
import warnings
from typing import Any, Protocol

import attrs

from foundry.domain import MAX_RESULT_BYTES, ErrorInfo, InvalidResult, Progress
from foundry.ports import Lease

STOP = b""
READY = b"R"
PROGRESS = b"P"
SKIPPED = b"S"
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_HEADER = struct.Struct("<?dQidH")  # ok, runtime, rss, pid, ended, token length
_TASK = struct.Struct("<Q")  # a task's number in a SKIPPED frame
_SIZE = struct.Struct("!i")  # a frame's length, or -1: the length follows in _LARGE
_LARGE = struct.Struct("!Q")
_READ_AHEAD = 65536
#: The largest frame either end sends (a reply's pickled value is refused past it).
MAX_FRAME_BYTES = 16 * MAX_RESULT_BYTES
#: A frame must arrive whole within this many seconds, plus one per ``FRAME_RATE`` bytes.
FRAME_WAIT_S = 5.0
FRAME_RATE = 16 * 1024 * 1024


class BadFrame(Exception):
    """A frame no pool process wrote: too long for the protocol, or cut short."""


Task = tuple[str, str, dict[str, Any], int, str, float, str, dict[str, str], int]


@attrs.frozen(eq=False)
class Reply:
    """A child's answer to one task."""

    ok: bool
    value: Any
    runtime_s: float
    rss: int
    pid: int
    token: str
    ended: float | None = None  # the child's monotonic time at the end (None: not known)

    @property
    def error(self) -> ErrorInfo:
        """The failure this reply carries (only when not ``ok``)."""
        assert isinstance(self.value, ErrorInfo)
        return self.value


class Sender(Protocol):
    """What a child needs of its end of the pipe: its descriptor, and a frame sent whole."""

    def fileno(self) -> int:
        """The descriptor (blocking) the child reads its tasks from."""
        ...

    def send_bytes(self, frame: bytes) -> None:
        """Send ``frame`` behind its length prefix; raises ``OSError``."""
        ...


class Channel:
    """One end of a blocking socket pair carrying length-prefixed frames, with the calls of
    ``multiprocessing.connection.Connection`` the pool uses (without importing it: with
    ``tempfile``, ``shutil``, ``bz2`` and ``lzma`` it is millions of instructions of a
    worker's start). ``recv_bytes`` reads exactly one frame, never past it: a frame already
    in the socket is still there for the selector to report."""

    __slots__ = ("_fd", "_partial")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._partial: _Partial | None = None  # a frame read in part (``read_frame``)

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        """Two connected ends."""
        left, right = socket.socketpair()
        return cls(left.detach()), cls(right.detach())

    def bound_reads(self) -> None:
        """Make this end non-blocking, so that ``recv_bytes`` gives up on a frame that does not
        come whole in time (the parent's end; writes still wait for room)."""
        os.set_blocking(self.fileno(), False)

    @property
    def closed(self) -> bool:
        """Whether this end is closed."""
        return self._fd < 0

    def fileno(self) -> int:
        """The descriptor; ``OSError`` once closed."""
        if self._fd < 0:
            raise OSError("handle is closed")
        return self._fd

    def close(self) -> None:
        """Close this end (again: nothing)."""
        fd, self._fd = self._fd, -1
        self._partial = None
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        if self._fd >= 0:  # as an unclosed socket says so: a leak shows in the tests
            warnings.warn(f"unclosed pool channel (fd {self._fd})", ResourceWarning, 2)
            self.close()

    def send_bytes(self, frame: bytes) -> None:
        """Write ``frame`` behind its length prefix, in one ``write`` where the socket takes
        it whole."""
        write_all(self.fileno(), framed(frame))

    def recv_bytes(self) -> bytes:
        """The next frame; ``EOFError`` once the other end is closed, ``BadFrame`` for one
        over ``MAX_FRAME_BYTES`` or (after ``bound_reads``) not whole in time (see the module
        docstring)."""
        fd = self.fileno()
        deadline = time.monotonic() + FRAME_WAIT_S
        (size,) = _SIZE.unpack(_read_exactly(fd, _SIZE.size, deadline))
        if size == -1:
            (size,) = _LARGE.unpack(_read_exactly(fd, _LARGE.size, deadline))
        elif size < 0:
            raise BadFrame(f"a frame length of {size}")
        if size > MAX_FRAME_BYTES:
            raise BadFrame(f"a frame of {size} bytes, over the {MAX_FRAME_BYTES} allowed")
        return _read_exactly(fd, size, deadline + size / FRAME_RATE)

    def read_frame(self) -> bytes | None:
        """The next frame if it is whole now, else ``None``: what came of it is kept, and a
        later call (when more is readable) reads on. Never waits (after ``bound_reads``);
        ``EOFError`` once the other end is closed, ``BadFrame`` for a frame over
        ``MAX_FRAME_BYTES`` (``overdue`` says when one is not whole in time)."""
        if self._partial is not None:
            return self._read_on(self._partial)
        fd = self.fileno()
        head = _read_some(fd, _SIZE.size)
        if head is None:
            return None
        body = None
        if len(head) == _SIZE.size:
            (size,) = _SIZE.unpack(head)
            if 0 < size <= MAX_FRAME_BYTES:  # the usual frame: its body read in one go
                body = _read_some(fd, size)
                if body is not None and len(body) == size:
                    return body
        return self._begin(head, body)

    def _begin(self, head: bytes, body: bytes | None) -> bytes | None:
        """A frame not whole in one read: from now on it is read in part."""
        partial = _Partial(time.monotonic() + FRAME_WAIT_S, head)
        if len(head) == _SIZE.size:
            self._sized(partial)
            if body:
                partial.parts.append(body)
                partial.have = len(body)
        self._partial = partial
        return self._read_on(partial)

    def overdue(self, now: float) -> BadFrame | None:
        """The error of a frame read in part whose time ran out at ``now`` (monotonic)."""
        partial = self._partial
        if partial is None or now < partial.deadline:
            return None
        if partial.size < 0:
            return BadFrame(f"{len(partial.head)} bytes of a frame's length came in time")
        return BadFrame(f"{partial.have} of a frame's {partial.size} bytes came in time")

    @property
    def frame_deadline(self) -> float:
        """When the frame read in part must be whole (monotonic; ``inf``: none is)."""
        return math.inf if self._partial is None else self._partial.deadline

    def _read_on(self, partial: _Partial) -> bytes | None:
        """Read what is there of the frame begun; it, once whole (then forgotten)."""
        fd = self.fileno()
        while partial.size < 0:  # its length first
            want = _SIZE.size if len(partial.head) < _SIZE.size else _SIZE.size + _LARGE.size
            chunk = _read_some(fd, want - len(partial.head))
            if chunk is None:
                return None
            partial.head += chunk
            if len(partial.head) == want:
                self._sized(partial)
        while partial.have < partial.size:
            chunk = _read_some(fd, partial.size - partial.have)
            if chunk is None:
                return None
            partial.parts.append(chunk)
            partial.have += len(chunk)
        self._partial = None
        parts = partial.parts
        return parts[0] if len(parts) == 1 else b"".join(parts)

    @staticmethod
    def _sized(partial: _Partial) -> None:
        """The frame's length is in ``partial.head``: check it, and give the frame its time."""
        (size,) = _SIZE.unpack_from(partial.head)
        if size == -1:
            if len(partial.head) < _SIZE.size + _LARGE.size:
                return  # its length follows
            (size,) = _LARGE.unpack_from(partial.head, _SIZE.size)
        elif size < 0:
            raise BadFrame(f"a frame length of {size}")
        if size > MAX_FRAME_BYTES:
            raise BadFrame(f"a frame of {size} bytes, over the {MAX_FRAME_BYTES} allowed")
        partial.size = size
        partial.deadline += size / FRAME_RATE

    def poll(self) -> bool:
        """Whether a read would not block (a frame, or the end of the pipe, is there), or a
        frame was read in part."""
        return self._partial is not None or _readable(self.fileno(), 0.0)


class _Partial:
    """A frame read in part: its length prefix so far, then its body so far."""

    __slots__ = ("deadline", "have", "head", "parts", "size")

    def __init__(self, deadline: float, head: bytes) -> None:
        self.deadline = deadline  # monotonic; its length adds to it once known
        self.head = head
        self.size = -1  # not known yet
        self.parts: list[bytes] = []
        self.have = 0


def _read_some(fd: int, size: int) -> bytes | None:
    """Up to ``size`` bytes there now (``None``: none); ``EOFError`` at the end of the pipe."""
    try:
        chunk = os.read(fd, size)
    except BlockingIOError:
        return None
    if not chunk:
        raise EOFError("the pipe was closed")
    return chunk


def _read_exactly(fd: int, size: int, deadline: float) -> bytes:
    """``size`` bytes from ``fd``; ``EOFError`` if it ends first. On a non-blocking ``fd``
    (the parent's end), ``BadFrame`` if they are not all there by ``deadline`` (monotonic).
    A large frame comes in many reads, which are joined once (joining as they came copied it
    over and over: a 100 MB result took the parent minutes, its leases lapsing meanwhile)."""
    parts: list[bytes] = []
    have = 0
    while have < size:
        try:
            chunk = os.read(fd, size - have)
        except BlockingIOError:  # a read costs no wait for poll while the bytes are there
            if not _readable(fd, deadline - time.monotonic()):
                raise BadFrame(f"{have} of a frame's {size} bytes came in time") from None
            continue
        if not chunk:
            raise EOFError("the pipe was closed")
        parts.append(chunk)
        have += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _readable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(timeout, 0.0) * 1000.0))


def encode_task(lease: Lease, payload: dict[str, Any] | None = None) -> bytes:
    """The frame that asks a child to run ``lease``'s job (with ``payload`` instead of the
    job's own, when given)."""
    return pickle.dumps(task_of(lease, payload), _PROTOCOL)


def task_of(lease: Lease, payload: dict[str, Any] | None = None) -> Task:
    """The fields of ``lease``'s task (see ``encode_task``)."""
    job = lease.job
    soft = job.soft_timeout.total_seconds() if job.soft_timeout is not None else 0.0
    return (
        job.id,
        job.name,
        job.payload if payload is None else payload,
        lease.attempt,
        job.queue,
        soft,
        lease.token,
        job.metadata,
        lease.fence,
    )


def decode_task(frame: bytes) -> Task:
    """A task frame's fields."""
    task: Task = pickle.loads(frame)
    return task


def framed(frame: bytes) -> bytes:
    """``frame`` behind its length prefix, as ``Connection.send_bytes`` writes it: written
    whole, it reaches the reader in one piece (``FrameReader``)."""
    if len(frame) > 0x7FFFFFFF:
        return _SIZE.pack(-1) + _LARGE.pack(len(frame)) + frame
    return _SIZE.pack(len(frame)) + frame


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd`` to the end, waiting for room as a blocking pipe would (the
    parent's end is non-blocking for its reads); raises ``OSError``."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll()


class FrameReader:
    """Reads length-prefixed frames from a pipe, a task frame in one ``read`` where
    ``Connection.recv_bytes`` makes two (its length, then its body); bytes read past a frame
    are the next one's."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending = b""

    def read(self) -> bytes:
        """The next frame; ``EOFError`` once the writer has closed the pipe."""
        data = self._fill(self._pending, _SIZE.size)
        (size,), start = _SIZE.unpack_from(data), _SIZE.size
        if size == -1:
            data = self._fill(data, start + _LARGE.size)
            (size,), start = _LARGE.unpack_from(data, start), start + _LARGE.size
        end = start + size
        data = self._fill(data, end)
        self._pending = data[end:]
        return data[start:end]

    def _fill(self, data: bytes, size: int) -> bytes:
        """``data`` and what follows it in the pipe, at least ``size`` bytes."""
        parts, have = [data], len(data)
        while have < size:
            chunk = os.read(self._fd, max(size - have, _READ_AHEAD))
            if not chunk:
                raise EOFError("the pipe was closed")
            parts.append(chunk)
            have += len(chunk)
        return data if len(parts) == 1 else b"".join(parts)


def encode_reply(
    ok: bool, value: Any, runtime_s: float, rss: int, *, pid: int, token: str, ended: float
) -> bytes:
    """The reply frame of process ``pid`` to the task of lease ``token``. A result that cannot
    be pickled turns the reply into a failure (``InvalidResult``); an error that cannot is
    replaced by a description."""
    try:
        body = pickle.dumps(value, _PROTOCOL)
        if len(body) > MAX_FRAME_BYTES:
            raise BadFrame(f"it is {len(body)} bytes pickled, over the {MAX_FRAME_BYTES} allowed")
    except BaseException as error:  # any __reduce__ may raise anything, SystemExit too
        if ok:  # a result the parent cannot receive cannot be stored: the attempt failed
            ok, value = False, _unpicklable_result(value, error)
        else:
            value = _describe(value, error)
        body = pickle.dumps(value, _PROTOCOL)
    tag = token.encode()
    return _HEADER.pack(ok, runtime_s, rss, pid, ended, len(tag)) + tag + body


def decode_reply(frame: bytes) -> Reply:
    """A reply from its frame; a result that cannot be unpickled makes it a failure
    (``InvalidResult``), an error that cannot is replaced by a description."""
    ok, runtime_s, rss, pid, ended, length = _HEADER.unpack_from(frame)
    body = _HEADER.size + length
    token = frame[_HEADER.size : body].decode()
    try:
        value = pickle.loads(memoryview(frame)[body:])
    except BaseException as error:  # unpickling runs any constructor: sys.exit must not end
        # the pool (a real Ctrl-C reaches it as a signal its handler takes, never raised here)
        if ok:
            ok, value = False, _unpicklable_result(None, error)
        else:
            value = _describe(None, error)
    if not ok and not isinstance(value, ErrorInfo):
        value = ErrorInfo(type="UndecodableError", message=str(value))
    return Reply(ok, value, runtime_s, rss, pid, token, ended)


def encode_skipped(task: int, token: str) -> bytes:
    """The frame a child sends instead of a reply for its task number ``task`` (of lease
    ``token``), which it did not start."""
    return SKIPPED + _TASK.pack(task) + token.encode()


def decode_skipped(frame: bytes) -> tuple[int, str]:
    """The task number and the lease token of a ``SKIPPED`` frame (a job sent twice to one
    child has one token, not one number)."""
    (task,) = _TASK.unpack_from(frame, 1)
    return task, frame[1 + _TASK.size :].decode()


def encode_progress(token: str, progress: Progress) -> bytes:
    """The frame a child sends when its running job (lease ``token``) reports progress."""
    return PROGRESS + pickle.dumps((token, progress.fraction, progress.note), _PROTOCOL)


def decode_progress(frame: bytes) -> tuple[str, Progress]:
    """The lease token and the progress of a progress frame."""
    token, fraction, note = pickle.loads(memoryview(frame)[1:])
    return token, Progress(fraction, note)


def _unpicklable_result(value: Any, error: BaseException) -> ErrorInfo:
    kind = type(value).__name__ if value is not None else "unknown"
    reason = f"it cannot cross to the worker's parent: {type(error).__name__}: {error}"
    return ErrorInfo.from_exception(InvalidResult(kind, reason[:300]))


def _describe(value: Any, error: BaseException) -> str:
    kind = type(value).__name__ if value is not None else "value"
    return f"<unpicklable {kind}: {type(error).__name__}: {error}>"[:500]
