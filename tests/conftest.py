"""Fixtures shared by the suite."""

import functools
import gc
from pathlib import Path

import pytest
from lakes import STARTER

from stedi.lake import Lake


def pytest_collection_finish(session):
    """A full garbage collection walks every object the process holds, and a test process holds a few
    hundred thousand that live as long as it does (the modules, botocore's service models, moto's
    backends, the parsers' caches): at the default thresholds full collections took a tenth of the AWS
    tests' time. What is alive once the tests are collected is kept out of them, and full collections
    come ten times less often; young objects are collected as before."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)


@pytest.fixture(scope="session", autouse=True)
def one_botocore_loader():
    """Every boto3 client made by the tests (the fake stack's, the functions') reads the service models
    through one loader: each new session would read and parse the same JSON files again, seconds a test."""
    import botocore.session

    shared = functools.cache(botocore.session.create_loader)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared)
        yield


@pytest.fixture
def starter_lake(tmp_path: Path) -> Lake:
    """A lake whose landing folders are the starter data, linked, not copied."""
    if not STARTER.is_dir():
        pytest.skip(f"starter data not found at {STARTER} (it comes with ../shared beside the project)")
    for source_dir in STARTER.iterdir():
        (tmp_path / source_dir.name).mkdir()
        (tmp_path / source_dir.name / "landing").symlink_to(source_dir / "landing", target_is_directory=True)
    return Lake(tmp_path)
