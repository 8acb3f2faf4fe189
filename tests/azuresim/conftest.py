"""Fixtures for the simulator's tests: a fresh Simulator per test on ephemeral loopback ports
(sharing one state dir, so the CA and keys are made once). Needs no Django."""

import pytest
import requests
from sim_helpers import SCENARIO

from azuresim import Simulator


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("azuresim-state"))


@pytest.fixture
def sim(state_dir):
    with Simulator(SCENARIO, state_dir=state_dir) as simulator:
        yield simulator


@pytest.fixture
def session(sim):
    s = requests.Session()
    s.verify = sim.ca_path
    s.trust_env = False  # a REQUESTS_CA_BUNDLE in the environment must not override our CA
    yield s
    s.close()
