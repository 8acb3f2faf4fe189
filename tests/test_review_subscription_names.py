"""Review of f31b98b (branch review): a tenant's empty subscription list, read as a person whose roles list
nothing (a viewer without Azure roles), must not keep a colleague who can list them from having them read."""

import pytest

from dashboard.demo import PROD
from dashboard.models import SubscriptionName
from tests.conftest import ALICE, BOB


@pytest.fixture
def names_at_sign_in(settings):
    settings.SUBSCRIPTION_NAMES_AT_SIGN_IN = True


@pytest.mark.usefixtures("names_at_sign_in")
def test_a_colleagues_sign_in_reads_the_names_a_viewer_without_roles_could_not(client, signed_in, sim, worker):
    for subscription in sim.world.subscriptions.values():
        subscription.principals = {ALICE["upn"]}  # Bob holds no role: his list is empty
    signed_in(BOB["upn"])
    worker()
    client.logout()
    signed_in(ALICE["upn"])
    worker()
    assert SubscriptionName.objects.filter(subscription_id=PROD).exclude(display_name="").exists(), (
        "Alice's sign-in read nothing: Bob's empty read marked the tenant as read")
