from domain import Job
from ports import QueuePort


def test_the_packages_import_and_a_default_job_is_valid() -> None:
    job = Job("noop")

    assert job.queue == "default"
    assert QueuePort.__name__ == "QueuePort"
