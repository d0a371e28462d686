import random

import pytest
from gatling_sid import DomainRegistry, Mutator, ProceduralOracle, TraceValidator


@pytest.fixture(scope="session")
def registry():
    return DomainRegistry.load()


@pytest.fixture(scope="session")
def oracle(registry):
    return ProceduralOracle(registry)


@pytest.fixture(scope="session")
def validator(registry):
    return TraceValidator(registry)


@pytest.fixture(scope="session")
def mutator(registry):
    return Mutator(registry)


@pytest.fixture(scope="session")
def traces(oracle):
    rng = random.Random(12345)
    return [oracle.make_trace(rng, f"t{i}") for i in range(700)]
