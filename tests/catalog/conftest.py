import pytest

from catalog.adapters import SimulatedPartner, partners


@pytest.fixture(autouse=True)
def simulated_partners():
    """Every partner answers at once and succeeds unless a test gives it a script."""
    partners.reset()
    sims = {name: SimulatedPartner(name) for name in ("network", "distributor", "drop_ship", "content")}
    partners.use(**sims)
    yield sims
    partners.reset()
