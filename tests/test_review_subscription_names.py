"""Review of f31b98b (branch review): a tenant's empty subscription list, read as a person whose roles list
nothing (a viewer without Azure roles), must not keep a colleague who can list them from having them read, at
sign-in or by the worker's refresh. Both fail on main (5b2a4aa) and pass at 1bc705d."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.demo import PROD
from dashboard.models import SubscriptionName
from dashboard.subscriptions import refresh_old_names
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


@pytest.mark.usefixtures("names_at_sign_in")
def test_the_worker_keeps_refreshing_as_the_colleague_who_can_list_them(client, signed_in, sim, worker):
    for subscription in sim.world.subscriptions.values():
        subscription.principals = {ALICE["upn"]}
    signed_in(ALICE["upn"])
    worker()  # Alice's sign-in reads the names
    SubscriptionName.objects.update(fetched_at=timezone.now() - timedelta(days=2))  # (her token could not renew)
    client.logout()
    signed_in(BOB["upn"])
    worker()  # Bob's sign-in reads an empty list
    sim.world.subscriptions[PROD].name = "Contoso Production (renamed)"
    SubscriptionName.objects.update(fetched_at=timezone.now() - timedelta(days=2))
    refresh_old_names()
    assert SubscriptionName.objects.get(subscription_id=PROD).display_name == "Contoso Production (renamed)", (
        "the worker read again as Bob, whose list is empty, not as Alice who read the names")
