"""Fixtures for the compose stack tests (tests/harness/stack.py): the container engine for the
session, one compose project per module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.prereq import in_ci, missing
from harness.stack import ENGINE_SCRIPT, Engine, Stack


def _engine_available() -> None:
    if shutil.which("docker") is None:
        missing("the `docker` CLI on PATH (the compose stack tests drive it)")
    if not ENGINE_SCRIPT.exists():
        missing(f"{ENGINE_SCRIPT}")


@pytest.fixture(scope="session")
def engine(tmp_path_factory) -> Iterator[Engine]:
    _engine_available()
    state = Path(tmp_path_factory.mktemp("engine"))
    eng = Engine(state)
    try:
        eng.start()
    except AssertionError as exc:
        eng.stop()
        if in_ci():
            pytest.fail(f"container engine set-up failed:\n{exc}", pytrace=False)
        missing(f"a container engine (podman via {ENGINE_SCRIPT.name}): {str(exc)[:2000]}")
    if shutil.which("podman") is None or "DOCKER_HOST" not in eng.env:
        eng.stop()
        missing("podman (scripts/container-engine.sh setup installs it as root on Debian)")
    try:
        eng.build_ci_images(Path(tmp_path_factory.mktemp("images")))
        yield eng
    finally:
        eng.stop()


@pytest.fixture(scope="module")
def stack(engine: Engine, tmp_path_factory) -> Iterator[Stack]:
    project = Stack(engine, Path(tmp_path_factory.mktemp("stack")))
    try:
        yield project
    finally:
        project.down()
