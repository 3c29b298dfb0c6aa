"""Why an attempt ended without the handler returning or raising on its own."""

from __future__ import annotations

from foundry.domain import FoundryError


class SoftTimeLimitExceeded(FoundryError):
    """Raised inside a handler when its job's ``soft_timeout`` passes; it may clean up.

    An ``async def`` handler's task is cancelled instead (it sees ``CancelledError``), and
    its attempt fails with this error.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"the job ran past its soft time limit of {seconds:g}s; make it faster, "
            "split it, or raise its soft_timeout"
        )


class TimeLimitExceeded(FoundryError):
    """The child running a job was killed because the job ran past its hard ``timeout``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"the job ran past its hard time limit of {seconds:g}s and its worker process was "
            "killed; make it faster, split it, or raise its timeout"
        )


class WorkerLost(FoundryError):
    """The child process running a job died (killed by a signal, or exited) mid-job."""

    def __init__(self, signal: int | None = None, exit_code: int | None = None) -> None:
        self.signal = signal
        self.exit_code = exit_code
        how = f"was killed by signal {signal}" if signal is not None else f"exited ({exit_code})"
        super().__init__(
            f"the worker process running the job {how}; look for an out-of-memory kill, a "
            "crash in native code or a handler calling os._exit"
        )
