"""What both queue adapters show the same way: a stored job that cannot be decoded."""

from __future__ import annotations

from foundry.domain import Job

#: The name a job is shown under (``get``, ``dead``) when its stored form cannot be decoded.
UNDECODABLE_NAME = "undecodable"


def undecodable_job(job_id: str, queue: str, reason: str, priority: int = 0) -> Job:
    """A placeholder for a stored job that cannot be decoded, naming why in its metadata."""
    return Job(
        UNDECODABLE_NAME,
        id=job_id,
        queue=queue,
        priority=priority,
        metadata={"undecodable": reason},
    )
