"""What the simulated ARM accepts and says about itself: the api-versions of the PostgreSQL provider and of
ARM's own types, the provider's locations, the RBAC actions, and the ratelimit headers of each bucket."""

from .state import POSTGRES_NAMESPACE

# The api-versions of Microsoft.DBforPostgreSQL/flexibleServers that carry ltrPreBackup.
API_VERSIONS = (
    "2023-03-01-preview",
    "2023-06-01-preview",
    "2023-12-01-preview",
    "2024-03-01-preview",
    "2024-08-01",
    "2024-11-01-preview",
    "2025-01-01-preview",
    "2025-06-01-preview",
    "2025-08-01",
    "2026-10-01",
)
# ARM's own types: the subscription list and resource provider registration.
SUBSCRIPTION_API_VERSIONS = ("2016-06-01", "2020-01-01", "2021-01-01", "2022-12-01")
PROVIDER_API_VERSIONS = ("2016-02-01", "2019-10-01", "2020-06-01", "2021-04-01", "2022-09-01", "2024-03-01")
LOCATIONS = (
    "australiaeast", "brazilsouth", "canadacentral", "centralus", "eastasia", "eastus", "eastus2",
    "francecentral", "germanywestcentral", "japaneast", "northeurope", "southeastasia", "swedencentral",
    "uksouth", "westeurope", "westus", "westus2", "westus3",
)
ACTION = f"{POSTGRES_NAMESPACE}/flexibleServers/ltrPreBackup/action"
READ_ACTION = f"{POSTGRES_NAMESPACE}/flexibleServers/read"
JSON_TYPE = "application/json; charset=utf-8"
# The ratelimit headers each bucket reports, as ARM names them.
BUCKET_HEADERS = {
    ("write", "subscription"): ("x-ms-ratelimit-remaining-subscription-writes",
                                "x-ms-ratelimit-remaining-subscription-global-writes"),
    ("read", "subscription"): ("x-ms-ratelimit-remaining-subscription-reads",
                               "x-ms-ratelimit-remaining-subscription-global-reads"),
    ("read", "tenant"): ("x-ms-ratelimit-remaining-tenant-reads",),
}
