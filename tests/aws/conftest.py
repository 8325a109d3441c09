"""Fixtures of the AWS tests: an environment that cannot reach AWS, and the stack in moto."""

import pytest
from aws_fakes import ENVIRONMENT, FakeStack, create_resources, patch_moto, speed_up_moto


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch):
    """Dummy credentials (nothing may reach AWS) and the variables template.yaml gives the functions."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    speed_up_moto(monkeypatch)


@pytest.fixture
def stack(monkeypatch):
    """The stack of template.yaml in moto, with the state machine executing for real."""
    yield from deployed(monkeypatch, FakeStack())


@pytest.fixture
def stack_with_success_email(monkeypatch):
    """The same stack deployed with SuccessEmail: the success topic exists."""
    yield from deployed(monkeypatch, FakeStack(success_email=True))


def deployed(monkeypatch, fake: FakeStack):
    from moto import mock_aws
    from moto.moto_api import state_manager

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        patch_moto(monkeypatch, fake)
        try:
            create_resources(fake)
            yield fake
        finally:
            # Transitions are global to moto: leave none behind for other tests.
            state_manager.unset_transition("glue::crawl")
            state_manager.unset_transition("glue::job_run")
