import functools
from collections.abc import Callable
from datetime import timedelta

import pytest

from foundry.application.registry import JobRegistry
from foundry.domain import (
    ConfigurationError,
    InvalidJob,
    RetryPolicy,
    UniqueSpec,
    UnknownHandler,
)


def send_mail(to: str) -> str:
    return to


def test_a_bare_decorator_registers_the_function_under_its_module_and_qualname() -> None:
    registry = JobRegistry()

    registry.job(send_mail)

    assert registry.names() == [f"{__name__}.send_mail"]
    assert registry.get(f"{__name__}.send_mail").function is send_mail


def test_the_registered_handler_is_called_with_the_payload_as_keyword_arguments() -> None:
    registry = JobRegistry()
    registry.job(name="mail")(send_mail)

    result = registry.get("mail")(to="a@example.com")

    assert result == "a@example.com"


def test_make_job_applies_the_handlers_defaults() -> None:
    registry = JobRegistry()
    policy = RetryPolicy(max_attempts=7)
    registry.job(name="mail", queue="emails", retry=policy, timeout=timedelta(seconds=9))(send_mail)

    job = registry.make_job("mail", {"to": "x"})

    assert (job.name, job.queue, job.retry, job.timeout) == (
        "mail",
        "emails",
        policy,
        timedelta(seconds=9),
    )
    assert job.payload == {"to": "x"}


def test_time_limits_and_a_unique_ttl_are_seconds_or_timedeltas() -> None:
    registry = JobRegistry()
    unique = UniqueSpec("mail-{to}", ttl=60)
    registry.job(name="mail", timeout=30, soft_timeout=2.5, unique=unique)(send_mail)

    job = registry.make_job("mail", {"to": "x"})

    assert (job.timeout, job.soft_timeout) == (timedelta(seconds=30), timedelta(seconds=2.5))
    assert unique.ttl == timedelta(minutes=1)


@pytest.mark.parametrize("timeout", [0, -1, timedelta(0), "30", True, float("inf")])
def test_a_time_limit_that_is_not_a_positive_duration_is_refused_naming_it(
    timeout: object,
) -> None:
    registry = JobRegistry()

    with pytest.raises(InvalidJob, match=r"timeout.* must be a positive duration"):
        registry.job(name="mail", timeout=timeout)(send_mail)  # type: ignore[arg-type]


def test_make_job_overrides_win_over_the_defaults_and_every_job_gets_a_fresh_id() -> None:
    registry = JobRegistry()
    registry.job(name="mail", priority=3)(send_mail)

    first = registry.make_job("mail", {"to": "x"}, priority=9, queue="urgent")
    second = registry.make_job("mail", {"to": "x"})

    assert (first.priority, first.queue) == (9, "urgent")
    assert second.priority == 3
    assert first.id != second.id


def test_a_unique_key_template_is_filled_from_the_payload() -> None:
    registry = JobRegistry()
    registry.job(name="mail", unique=UniqueSpec(key="mail:{to}"))(send_mail)

    job = registry.make_job("mail", {"to": "bob"})

    assert job.unique is not None
    assert job.unique.key == "mail:bob"


def test_a_unique_key_template_naming_a_field_the_payload_lacks_is_an_invalid_job() -> None:
    def send(to: str, user: str | None = None) -> None:
        pass

    registry = JobRegistry()
    registry.job(name="mail", unique=UniqueSpec(key="mail:{user}"))(send)

    with pytest.raises(InvalidJob, match="unique"):
        registry.make_job("mail", {"to": "bob"})


def test_a_unique_key_template_naming_an_argument_the_handler_lacks_is_refused_at_declaration() -> (
    None
):
    with pytest.raises(InvalidJob, match="names 'user', which handler 'mail'"):
        JobRegistry().job(name="mail", unique=UniqueSpec(key="mail:{user}"))(send_mail)


def test_key_templates_may_index_into_an_argument() -> None:
    def sync(account: dict[str, int]) -> None:
        pass

    registry = JobRegistry()
    registry.job(
        name="sync",
        unique=UniqueSpec(key="s:{account[id]}"),
        concurrency=1,
        limit_key="a:{account[id]}",
    )(sync)

    job = registry.make_job("sync", {"account": {"id": 7}})

    assert job.unique is not None
    assert job.limit is not None
    assert (job.unique.key, job.limit.key) == ("s:7", "a:7")


def test_an_unknown_name_raises_unknown_handler_naming_it() -> None:
    registry = JobRegistry()

    with pytest.raises(UnknownHandler, match="nope"):
        registry.get("nope")
    with pytest.raises(UnknownHandler):
        registry.make_job("nope", {})


def test_bad_defaults_are_rejected_at_registration() -> None:
    registry = JobRegistry()

    with pytest.raises(InvalidJob, match="queue"):
        registry.job(name="mail", queue="{bad}")(send_mail)
    with pytest.raises(InvalidJob, match="soft_timeout"):
        registry.job(name="mail", timeout=timedelta(seconds=1), soft_timeout=timedelta(seconds=2))(
            send_mail
        )


def test_two_functions_under_one_name_are_a_configuration_error() -> None:
    registry = JobRegistry()
    registry.job(name="mail")(send_mail)

    with pytest.raises(ConfigurationError, match="mail"):
        registry.job(name="mail")(lambda: None)


def test_a_function_can_be_looked_up_by_identity() -> None:
    registry = JobRegistry()
    registry.job(name="mail")(send_mail)

    assert registry.name_of(send_mail) == "mail"
    assert registry.name_of("mail") == "mail"
    with pytest.raises(UnknownHandler):
        registry.name_of(print)


def test_make_jobs_gives_each_job_the_defaults_the_overrides_and_its_own_id() -> None:
    registry = JobRegistry()
    registry.job(name="mail", queue="emails", priority=3)(send_mail)

    jobs = registry.make_jobs([("mail", {"to": "a"}), ("mail", {"to": "b"})], priority=5)

    assert [(job.queue, job.priority, job.payload) for job in jobs] == [
        ("emails", 5, {"to": "a"}),
        ("emails", 5, {"to": "b"}),
    ]
    assert jobs[0].id != jobs[1].id
    assert jobs[0].metadata is not jobs[1].metadata


def test_make_jobs_validates_every_payload_like_job_does() -> None:
    registry = JobRegistry()
    registry.job(name="mail")(send_mail)

    with pytest.raises(InvalidJob) as refused:
        registry.make_jobs([("mail", {"to": "a"}), ("mail", {"to": ("a", "b")})])

    assert refused.value.field == "payload"
    assert "payload.to is a tuple" in str(refused.value)


def test_an_explicit_empty_id_is_refused_not_replaced() -> None:
    registry = JobRegistry()
    registry.job(name="mail")(send_mail)

    with pytest.raises(InvalidJob, match="id"):
        registry.make_job("mail", {}, id="")


def test_make_jobs_refuses_one_id_for_the_whole_batch() -> None:
    registry = JobRegistry()
    registry.job(name="mail")(send_mail)

    with pytest.raises(TypeError, match="make_job"):
        registry.make_jobs([("mail", {}), ("mail", {})], id="same")


def test_two_lambdas_or_nested_functions_registered_bare_are_refused_not_merged() -> None:
    registry = JobRegistry()
    registry.job(lambda to: ("first", to))

    with pytest.raises(ConfigurationError, match="two handlers are registered as"):
        registry.job(lambda to: ("second", to))
    registry.job(_nested())
    with pytest.raises(ConfigurationError, match="give one of them another name"):
        registry.job(_nested())


def _nested() -> Callable[[str], str]:
    def inner(to: str) -> str:
        return to

    return inner


def test_a_callable_without_a_name_of_its_own_is_registered_by_name_or_refused() -> None:
    registry = JobRegistry()
    partial = functools.partial(send_mail, to="a@example.com")

    with pytest.raises(ConfigurationError, match=r"register it with @registry.job\(name=...\)"):
        registry.job(partial)
    registry.job(name="mail.partial")(partial)

    assert registry.get("mail.partial")() == "a@example.com"
    assert registry.name_of(partial) == "mail.partial"
    with pytest.raises(UnknownHandler, match=r"functools\.partial"):
        registry.name_of(functools.partial(send_mail))


def test_the_same_function_registered_again_is_the_same_handler() -> None:
    registry = JobRegistry()

    registry.job(send_mail)
    registry.job(send_mail)

    assert registry.names() == [f"{__name__}.send_mail"]


@pytest.mark.parametrize(
    ("asked", "suggested"),
    [("charge", "'billing.jobs.charge'"), ("billing.jobs.chrage", "'billing.jobs.charge'")],
)
def test_an_unknown_name_suggests_the_registered_one_it_likely_meant(
    asked: str, suggested: str
) -> None:
    registry = JobRegistry()
    registry.job(name="billing.jobs.charge")(lambda: None)
    registry.job(name="mail.welcome")(lambda: None)

    with pytest.raises(UnknownHandler) as raised:
        registry.get(asked)

    assert f"(did you mean {suggested}?)" in str(raised.value)


def test_an_unknown_name_like_none_registered_suggests_nothing() -> None:
    registry = JobRegistry()
    registry.job(name="mail.welcome")(lambda: None)

    with pytest.raises(UnknownHandler) as raised:
        registry.get("zzz")

    assert "did you mean" not in str(raised.value)
