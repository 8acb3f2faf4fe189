"""A worker's copy of a user's token cache after a sign-out and a new sign-in (found in review, issue 12). The
copy is kept while the stored cache's version is unchanged; a sign-out used to delete the row, and the next
sign-in created it again at version 1, the version of the old session's copy, which then kept being used (its
access token answered from memory). A sign-out now empties the row and moves its version on."""

from checks.models import Check
from checks.tasks import run_check
from dashboard import entra, tokencache
from dashboard.demo import PROD
from tests.conftest import ALICE, make_server


def test_a_sign_out_and_a_new_sign_in_do_not_leave_the_old_sessions_token_in_use(signed_in, sim):
    alice = signed_in(ALICE["upn"])
    sim.set_behaviour(PROD, "rg-payments-prod", "pg-aba-1", outcome="success")
    server = make_server(name="pg-aba-1")
    check = Check.objects.queue(server, alice, "b-1", api_version="2024-08-01")
    assert run_check.call(check.pk) == "succeeded"  # this process now holds alice's cache (as a worker would)
    old_version = tokencache.stored_version(alice)
    old_token = entra.arm_token(alice).access_token
    entra.sign_out(alice)  # in the web process: the worker's copy is not told
    assert tokencache.stored_version(alice) > old_version, "emptied, its version moved on"
    assert entra.arm_token(alice).error == "no_account", "the worker's copy is not used after the sign-out"
    alice = signed_in(ALICE["upn"])  # a new session: a new cache row
    same_version = tokencache.stored_version(alice) == old_version
    assert entra.arm_token(alice).access_token != old_token, f"the old session's token is still used (version back to {old_version}: {same_version})"


def test_the_new_sessions_token_differs_from_the_old_one(signed_in, sim):
    """The control: with no copy held, the new session's own token is a different one."""
    alice = signed_in(ALICE["upn"])
    old_token = entra.arm_token(alice).access_token
    entra.sign_out(alice)
    entra._held.clear()
    alice = signed_in(ALICE["upn"])
    assert entra.arm_token(alice).access_token != old_token
