"""The official Azure SDK for Python (azure-mgmt-postgresqlflexibleservers) as an independent second client
of the simulator: for every server outcome of the demo scenario, its ltrPreBackup call deserializes the
success or raises the azure-core exception type real ARM's answer would raise, with ARM's error code. So the
simulator cannot drift into answers that only our own client accepts.

The SDK runs its whole pipeline (ARM challenge authentication, the provider auto-registration policy,
error mapping) over real HTTPS to the simulator; only its retries are off, so each call is one request."""

import datetime

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.mgmt.core.policies import _base as arm_policies
from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient
from azure.mgmt.postgresqlflexibleservers.models import BackupSettings, LtrPreBackupRequest
from sim_helpers import ALICE, BOB, CHARLIE, FABRIKAM_PROD, PROD, RG, SANDBOX, STAGING

API_VERSION = "2024-08-01"


class SimCredential:
    """A TokenCredential whose tokens the simulator mints for one user; it records what the SDK asked."""

    def __init__(self, sim, upn, expires_in=3600):
        self.sim, self.upn, self.expires_in = sim, upn, expires_in
        self.requests = []

    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        self.requests.append({"scopes": scopes, "claims": claims, "enable_cae": enable_cae})
        token = self.sim.issue_access_token(self.upn, expires_in=self.expires_in)
        return AccessToken(token, int(datetime.datetime.now(datetime.UTC).timestamp()) + self.expires_in)


def client_for(sim, upn=ALICE, subscription=PROD, api_version=API_VERSION, credential=None):
    return PostgreSQLManagementClient(
        credential or SimCredential(sim, upn),
        subscription,
        base_url=sim.https_url,
        api_version=api_version,
        connection_verify=sim.ca_path,
        retry_total=0,  # one request per call: the simulator's answer, not the SDK's retry policy
        credential_scopes=["https://management.azure.com/.default"],
    )


def pre_backup(client, server, rg=RG):
    request = LtrPreBackupRequest(backup_settings=BackupSettings(backup_name="sdk-check"))
    return client.backups_long_term_retention.check_prerequisites(rg, server, request)


# Every server of the demo scenario: (user, subscription, resource group, server) -> what the SDK makes of it.
PASSES = [
    (ALICE, PROD, RG, "pg-payments-01", 1),
    (ALICE, PROD, RG, "pg-payments-02", 4),
    (ALICE, PROD, RG, "pg-ledger", 2),
    (ALICE, STAGING, "rg-staging", "pg-staging-01", 1),
    (ALICE, STAGING, "rg-staging", "pg-staging-02", 8),
    (ALICE, STAGING, "rg-staging", "pg-inventory-01", 2),
    (CHARLIE, FABRIKAM_PROD, "rg-fabrikam", "pg-fabrikam-01", 2),
]
FAILS = [
    (BOB, "pg-ledger", HttpResponseError, 403, "AuthorizationFailed"),
    (ALICE, "pg-orders", HttpResponseError, 400, "PostgreSQLFlexOperationFailedUserError"),
    (ALICE, "pg-analytics", HttpResponseError, 403, "AuthorizationFailed"),
    (ALICE, "pg-reporting", HttpResponseError, 429, "TooManyRequests"),
    (ALICE, "pg-billing", HttpResponseError, 500, "InternalServerError"),
    (ALICE, "pg-nowhere", ResourceNotFoundError, 404, "ResourceNotFound"),
]


@pytest.mark.parametrize(("upn", "sub", "rg", "server", "containers"), PASSES, ids=[p[3] for p in PASSES])
def test_the_sdk_deserializes_each_passing_server(sim, upn, sub, rg, server, containers):
    result = pre_backup(client_for(sim, upn, sub), server, rg)
    assert result.number_of_containers == containers
    assert len(sim.received(f"/{server}/ltrPreBackup", "POST")) == 1


@pytest.mark.parametrize(("upn", "server", "exc_type", "status", "code"), FAILS, ids=[f[1] + "-" + f[0] for f in FAILS])
def test_the_sdk_raises_the_right_error_for_each_failing_server(sim, upn, server, exc_type, status, code):
    with pytest.raises(HttpResponseError) as caught:
        pre_backup(client_for(sim, upn), server)
    err = caught.value
    assert type(err) is exc_type and err.status_code == status and err.error.code == code
    assert err.response.headers["x-ms-request-id"]


def test_the_sdk_sees_why_a_server_is_not_ready_and_when_to_retry(sim):
    client = client_for(sim)
    with pytest.raises(HttpResponseError) as caught:
        pre_backup(client, "pg-orders")
    [detail] = caught.value.error.details
    assert detail.code == "ServerNotReadyForLongTermBackup" and "'Stopped'" in detail.message
    with pytest.raises(HttpResponseError) as caught:
        pre_backup(client, "pg-reporting")
    assert caught.value.response.headers["Retry-After"] == "30"


def test_the_flaky_gateway_fails_twice_then_passes(sim):
    client = client_for(sim)
    for _ in range(2):
        with pytest.raises(HttpResponseError) as caught:
            pre_backup(client, "pg-gateway-flaky")
        assert caught.value.status_code == 503 and caught.value.error.code == "ServiceUnavailable"
    assert pre_backup(client, "pg-gateway-flaky").number_of_containers == 3


def test_arms_own_throttling_is_distinguishable_from_the_providers(sim):
    sim.set_throttle(capacity=1, refill_per_second=0.01)
    client = client_for(sim)
    assert pre_backup(client, "pg-payments-01").number_of_containers == 1
    with pytest.raises(HttpResponseError) as caught:
        pre_backup(client, "pg-payments-01")
    err = caught.value
    assert err.status_code == 429 and err.error.code == "SubscriptionRequestsThrottled"
    assert err.response.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"


def test_sign_in_problems_are_client_authentication_errors(sim):
    with pytest.raises(ClientAuthenticationError) as caught:
        pre_backup(client_for(sim, credential=SimCredential(sim, ALICE, expires_in=-600)), "pg-payments-01")
    assert caught.value.error.code == "ExpiredAuthenticationToken"
    with pytest.raises(ClientAuthenticationError) as caught:
        pre_backup(client_for(sim, CHARLIE), "pg-payments-01")  # a Fabrikam token on a Contoso subscription
    assert caught.value.error.code == "InvalidAuthenticationTokenTenant"


def test_the_sdk_answers_a_cae_claims_challenge(sim):
    credential = SimCredential(sim, ALICE)
    client = client_for(sim, credential=credential)
    sim.challenge_next(ALICE)
    assert pre_backup(client, "pg-payments-01").number_of_containers == 1
    assert len(sim.received("/pg-payments-01/ltrPreBackup", "POST")) == 2
    assert credential.requests[-1]["claims"] and '"nbf"' in credential.requests[-1]["claims"]


def test_an_api_version_the_provider_does_not_know(sim):
    with pytest.raises(HttpResponseError) as caught:
        pre_backup(client_for(sim, api_version="1999-01-01"), "pg-payments-01")
    assert caught.value.status_code == 400 and caught.value.error.code == "NoRegisteredProviderFound"
    # The SDK's own default api-version is accepted too.
    default = PostgreSQLManagementClient(SimCredential(sim, ALICE), PROD, base_url=sim.https_url,
                                         connection_verify=sim.ca_path, retry_total=0)
    assert pre_backup(default, "pg-payments-01").number_of_containers == 1
    assert sim.received("/ltrPreBackup", "POST")[-1].query["api-version"] == "2026-10-01"


def test_the_sdk_registers_the_provider_itself(sim, monkeypatch):
    # The SDK's auto-registration policy waits 10 s before asking whether registration is done.
    class NoWait:
        @staticmethod
        def sleep(seconds):
            pass

    monkeypatch.setattr(arm_policies, "time", NoWait)
    with pytest.raises(ResourceNotFoundError) as caught:
        pre_backup(client_for(sim, subscription=SANDBOX), "pg-x", rg="rg-any")
    assert caught.value.error.code == "ResourceGroupNotFound"
    assert len(sim.received(f"/subscriptions/{SANDBOX}/providers/Microsoft.DBforPostgreSQL/register", "POST")) == 1
    assert len(sim.received(f"/subscriptions/{SANDBOX}/providers/Microsoft.DBforPostgreSQL", "GET")) == 1
    assert len(sim.received("/pg-x/ltrPreBackup", "POST")) == 2  # the 409, then the retry after registering


def test_the_sdk_gets_a_server_and_lists_a_resource_group(sim):
    client = client_for(sim)
    server = client.servers.get(RG, "pg-orders")
    assert (server.name, server.type, server.location) == ("pg-orders", "Microsoft.DBforPostgreSQL/flexibleServers",
                                                           "westeurope")
    assert server.state == "Stopped" and server.version == "16" and server.sku.name == "Standard_D2ds_v5"
    assert server.id == f"/subscriptions/{PROD}/resourceGroups/{RG}/providers/Microsoft.DBforPostgreSQL" \
        "/flexibleServers/pg-orders"
    names = [s.name for s in client.servers.list_by_resource_group(RG)]
    assert len(names) == 8 and "pg-payments-01" in names and all(
        s.state == "Ready" for s in client.servers.list_by_resource_group(RG) if s.name != "pg-orders")
    with pytest.raises(ResourceNotFoundError) as caught:
        client.servers.get(RG, "pg-nowhere")
    assert caught.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as caught:
        list(client.servers.list_by_resource_group("rg-nowhere"))
    assert caught.value.error.code == "ResourceGroupNotFound"


def test_the_sdk_pages_the_subscriptions_servers(sim):
    sim.inventory.page_size = 3
    try:
        names = [s.name for s in client_for(sim).servers.list_by_subscription()]
    finally:
        sim.inventory.page_size = 50
    assert len(names) == 8 and len(sim.received("/providers/Microsoft.DBforPostgreSQL/flexibleServers", "GET")) == 3
