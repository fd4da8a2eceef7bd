"""Every scenario file in tests/scenarios, walked through the engine and the renderer."""

from pathlib import Path

import pytest

from conversation.loader import load_survey
from tests.scenario_runner import run_scenario

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def survey():
    return load_survey()


def test_there_are_scenarios():
    assert len(SCENARIOS) >= 6


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario(path, survey):
    run_scenario(path, survey)
