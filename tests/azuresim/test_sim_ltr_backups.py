"""The simulator's LTR backup operations: both GETs, each scenario, paging, a disappearing operation, faults, and
every answer valid against the 2024-08-01 spec's own JSON schema."""

import json
import time
from pathlib import Path

import jsonschema
import pytest
from sim_helpers import PROD, RG, STAGING

SPEC = Path("/work/shared/azure/spec/2024-08-01_LongTermRetentionOperation.json")
for candidate in (Path(__file__).resolve().parents[3] / "shared" / "azure" / "spec" / SPEC.name, SPEC):
    if candidate.exists():
        SPEC = candidate
        break
# ProxyResource lives in ARM's common types, outside the spec file: its shape as common-types v5 defines it.
PROXY_RESOURCE = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "type": {"type": "string"},
                   "systemData": {"type": "object"}},
}
BASE = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers/{server}"
LIST = BASE + "/ltrBackupOperations?api-version=2024-08-01"
ONE = BASE + "/ltrBackupOperations/{name}?api-version=2024-08-01"


def _schema(definition: str) -> dict:
    spec = json.loads(SPEC.read_text())
    definitions = spec["definitions"]
    text = json.dumps(definitions).replace(
        '"../../../../../../common-types/resource-management/v5/types.json#/definitions/ProxyResource"',
        '"#/definitions/ProxyResource"')
    definitions = {**json.loads(text), "ProxyResource": PROXY_RESOURCE}
    return {"$ref": f"#/definitions/{definition}", "definitions": definitions}


def valid(body: dict, definition: str) -> dict:
    jsonschema.Draft4Validator(_schema(definition), format_checker=jsonschema.FormatChecker()).validate(body)
    for item in body.get("value", [body]):  # the enum is extensible; these are the statuses we serve
        assert item["properties"]["status"] in ("Running", "Succeeded", "Failed", "Cancelled")
    return body


pytestmark = pytest.mark.skipif(not SPEC.exists(), reason="the spec is in ../shared/azure/spec")


@pytest.fixture
def get(sim, session):
    def _get(path, upn="alice@contoso.example"):
        token = sim.issue_access_token(upn)
        return session.get(sim.https_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    return _get


def test_a_success_and_a_running_backup_that_progresses_to_succeeded(sim, get):
    sim.set_ltr_backups(PROD, RG, "pg-payments-01", [
        {"name": "old", "status": "Succeeded", "started_ago": 3 * 86400, "duration": 400, "size": 1000},
        {"name": "now", "status": "Running", "started_ago": 0, "duration": 1.5, "size": 900, "transferred": 300},
    ])
    body = valid(get(LIST.format(sub=PROD, rg=RG, server="pg-payments-01")).json(), "LtrServerBackupOperationList")
    running, done = body["value"]
    assert running["name"] == "now" and running["properties"]["status"] == "Running"
    assert 0 <= running["properties"]["percentComplete"] < 100 and "endTime" not in running["properties"]
    assert done["properties"] | {"status": "Succeeded", "percentComplete": 100.0} == done["properties"]
    assert running["id"].endswith("/flexibleServers/pg-payments-01/ltrBackupOperations/now")
    assert running["type"] == "Microsoft.DBforPostgreSQL/flexibleServers/ltrBackupOperations"
    time.sleep(1.6)
    one = valid(get(ONE.format(sub=PROD, rg=RG, server="pg-payments-01", name="now")).json(), "LtrServerBackupOperation")
    assert one["properties"]["status"] == "Succeeded" and one["properties"]["percentComplete"] == 100.0
    assert one["properties"]["dataTransferredInBytes"] == 300 and "endTime" in one["properties"]


def test_a_failure_says_its_error_and_none_is_an_empty_list(sim, get):
    failed = valid(get(LIST.format(sub=PROD, rg=RG, server="pg-billing")).json(), "LtrServerBackupOperationList")
    props = failed["value"][0]["properties"]
    assert props["status"] == "Failed" and props["errorCode"] == "UserErrorSasUriExpired"
    assert "SAS URI" in props["errorMessage"] and props["percentComplete"] == 41.0
    none = valid(get(LIST.format(sub=PROD, rg=RG, server="pg-orders")).json(), "LtrServerBackupOperationList")
    assert none == {"value": []}


def test_many_are_paged_with_next_links_on_the_arm_host(sim, get):
    first = valid(get(LIST.format(sub=STAGING, rg="rg-staging", server="pg-inventory-01")).json(),
                  "LtrServerBackupOperationList")
    names, link, pages = [op["name"] for op in first["value"]], first.get("nextLink"), 1
    while link:
        assert link.startswith(sim.https_url + "/subscriptions/")
        page = valid(get(link[len(sim.https_url):]).json(), "LtrServerBackupOperationList")
        names, link, pages = names + [op["name"] for op in page["value"]], page.get("nextLink"), pages + 1
    assert pages == 3 and len(names) == len(set(names)) == 45
    assert names[0] == "ltr-daily-045" and names[-1] == "ltr-daily-001"  # newest first


def test_an_operation_that_disappears_is_neither_listed_nor_found(sim, get):
    sim.remove_ltr_backup(PROD, RG, "pg-payments-01", "ltr-now")
    names = [op["name"] for op in get(LIST.format(sub=PROD, rg=RG, server="pg-payments-01")).json()["value"]]
    assert names == ["ltr-2026-weekly"]
    r = get(ONE.format(sub=PROD, rg=RG, server="pg-payments-01", name="ltr-now"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"


def test_the_reads_go_through_arms_checks(sim, session, get):
    path = LIST.format(sub=PROD, rg=RG, server="pg-payments-01")
    assert session.get(sim.https_url + path, timeout=10).status_code == 401
    assert get(path.replace("2024-08-01", "1999-01-01")).json()["error"]["code"] == "NoRegisteredProviderFound"
    assert get(path, "charlie@fabrikam.example").json()["error"]["code"] == "InvalidAuthenticationTokenTenant"
    missing = get(LIST.format(sub=PROD, rg=RG, server="pg-nowhere"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"
    assert get(path).headers["x-ms-ratelimit-remaining-subscription-reads"]


def test_faults_as_for_the_pre_check_then_success(sim, get):
    path = LIST.format(sub=PROD, rg=RG, server="pg-billing")
    sim.set_ltr_backups(PROD, RG, "pg-billing", behaviour={"outcome": "unavailable", "fail_times": 1,
                                                           "retry_after": 1})
    first = get(path)
    assert first.status_code == 503 and first.headers["Retry-After"] == "1"
    assert get(path).status_code == 200
    sim.set_ltr_backups(PROD, RG, "pg-billing", behaviour={"outcome": "forbidden"})
    denied = get(path).json()["error"]
    assert denied["code"] == "AuthorizationFailed" and "ltrBackupOperations/read" in denied["message"]
    sim.set_behaviour(PROD, RG, "pg-billing", outcome="success")  # the pre-check's behaviour is its own
    assert get(path).status_code == 403


def test_the_read_bucket_meters_them(sim, get):
    sim.set_throttle(read_capacity=2, read_refill_per_second=0.01)
    path = LIST.format(sub=PROD, rg=RG, server="pg-payments-01")
    assert [get(path).status_code for _ in range(3)] == [200, 200, 429]
