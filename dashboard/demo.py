"""The demo fleet: servers registered for the simulator's demo tenants, one for each kind of outcome.

These names match `azuresim/scenarios/demo.json` (which the app never imports): some servers exist there
and behave in a given way, two deliberately do not exist, so their checks end in ARM's 404s. pg-flip-01
passes its first check and is not ready from then on: the demo schedule's first run finds it ready, the next
check records a readiness change and raises an alert.
"""

CONTOSO = "11111111-1111-4111-8111-111111111111"
FABRIKAM = "22222222-2222-4222-8222-222222222222"
PROD = "0b5e0001-0000-4000-8000-000000000001"
STAGING = "0b5e0002-0000-4000-8000-000000000002"
FABRIKAM_PROD = "0b5e0003-0000-4000-8000-000000000003"
SANDBOX = "0b5e0004-0000-4000-8000-000000000004"

# (tenant, subscription, resource group, server name, label: what the demo shows)
FLEET = [
    (CONTOSO, PROD, "rg-payments-prod", "pg-payments-01", "Passes: 1 container"),
    (CONTOSO, PROD, "rg-payments-prod", "pg-payments-02", "Passes slowly: 4 containers after 3 s"),
    (CONTOSO, PROD, "rg-payments-prod", "pg-ledger", "Passes for Alice; Bob lacks the RBAC action (403)"),
    (CONTOSO, PROD, "rg-payments-prod", "pg-orders", "Server stopped: not ready for LTR backup"),
    (CONTOSO, PROD, "rg-payments-prod", "pg-analytics", "Nobody may run the check (403)"),
    (CONTOSO, PROD, "rg-payments-prod", "pg-reporting", "Throttled by ARM (429, Retry-After 30 s)"),
    (CONTOSO, PROD, "rg-payments-prod", "pg-billing", "Azure fails (500)"),
    (CONTOSO, PROD, "rg-payments-prod", "pg-gateway-flaky", "503 twice, then passes on retry"),
    (CONTOSO, PROD, "rg-payments-prod", "pg-decommissioned", "Deleted in Azure (ResourceNotFound)"),
    (CONTOSO, PROD, "rg-legacy", "pg-legacy-01", "Resource group gone (ResourceGroupNotFound)"),
    (CONTOSO, STAGING, "rg-staging", "pg-staging-01", "Passes: 1 container"),
    (CONTOSO, STAGING, "rg-staging", "pg-staging-02", "Passes: 8 containers after 1.5 s"),
    (CONTOSO, STAGING, "rg-staging", "pg-flip-01", "Flips to not ready after its first check (Updating)"),
    (CONTOSO, SANDBOX, "rg-sandbox", "pg-sandbox-01", "Provider not registered in the subscription"),
    (FABRIKAM, FABRIKAM_PROD, "rg-fabrikam", "pg-fabrikam-01", "Fabrikam's own server"),
]
