"""Every way a check can end, in words a user can act on.

ARM answers with dozens of error codes; people need to know which of a handful of things went wrong and
what to do about it. `classify()` maps an HTTP status and ARM error code to a `Category`, and each
category carries a one-line remedy shown next to the raw error. Both of ARM's throttling answers (its own
`SubscriptionRequestsThrottled` and a resource provider's `TooManyRequests`) are a 429, classified by status.
"""

from django.db import models

RBAC_ACTION = "Microsoft.DBforPostgreSQL/flexibleServers/ltrPreBackup/action"


class Category(models.TextChoices):
    PASSED = "passed", "Passed"
    SIGNIN_REQUIRED = "signin_required", "Sign-in required"
    PERMISSION_MISSING = "permission_missing", "Permission missing"
    NOT_FOUND = "not_found", "Not found"
    PROVIDER_NOT_REGISTERED = "provider_not_registered", "Provider not registered"
    SERVER_NOT_READY = "server_not_ready", "Server not ready"
    BUSY = "busy", "Busy with another operation"
    THROTTLED = "throttled", "Throttled by Azure"
    AZURE_FAILURE = "azure_failure", "Azure-side failure"
    NETWORK = "network", "Network or timeout"
    UNEXPECTED_RESPONSE = "unexpected_response", "Unexpected response"
    REJECTED = "rejected", "Request rejected"

    @property
    def remedy(self) -> str:
        return REMEDIES[self]

    @property
    def is_about_the_server(self) -> bool:
        """True when the outcome says something about the server itself, whoever asked: only these change
        a server's readiness. The rest (permission missing, sign-in required, throttled, network, Azure-side
        failure, unexpected answer, rejected request) are about the caller or the path to Azure."""
        return self in SERVER_OUTCOMES


SERVER_OUTCOMES = frozenset({
    Category.PASSED, Category.SERVER_NOT_READY, Category.NOT_FOUND, Category.PROVIDER_NOT_REGISTERED, Category.BUSY,
})

REMEDIES = {
    Category.PASSED: "Azure accepted the pre-backup check; the server can take a long-term-retention backup.",
    Category.SIGNIN_REQUIRED: "Your Azure sign-in has expired or needs another step: sign in again, then re-run.",
    Category.PERMISSION_MISSING: (
        f"Ask an owner of the server's subscription or resource group for a role with {RBAC_ACTION} "
        "(for example the built-in role Contributor), then sign in again and re-run."
    ),
    Category.NOT_FOUND: (
        "Azure has no such subscription, resource group or server: check the registration's spelling, "
        "or archive it if the server was deleted."
    ),
    Category.PROVIDER_NOT_REGISTERED: (
        "Register the resource provider Microsoft.DBforPostgreSQL in the subscription "
        "(Portal: Subscription > Resource providers), then re-run."
    ),
    Category.SERVER_NOT_READY: "Start the server or wait until its state is Ready, then re-run.",
    Category.BUSY: (
        "Another operation is running on this server (a backup, a restart, a scaling): the registration is fine; "
        "re-run once that operation has ended."
    ),
    Category.THROTTLED: "Azure is limiting requests for this subscription: re-run after the time given.",
    Category.AZURE_FAILURE: (
        "Azure failed on its side: re-run later; if it persists, open a support ticket with the request ids."
    ),
    Category.NETWORK: "Azure could not be reached in time: re-run; if it persists, check the network path to ARM.",
    Category.UNEXPECTED_RESPONSE: (
        "Azure's answer was not what the API documents: re-run; if it persists, send the excerpt and request "
        "ids to support."
    ),
    Category.REJECTED: (
        "Azure refused the request as sent: read the error; correct the registration, the backup name or the "
        "api-version (AZURE_LTR_API_VERSION), then re-run."
    ),
}

_SIGNIN_CODES = {"AuthenticationFailed", "InvalidAuthenticationToken", "ExpiredAuthenticationToken",
                 "InvalidAuthenticationTokenTenant", "InvalidAuthenticationTokenAudience"}
_NOT_FOUND_CODES = {"ResourceNotFound", "ResourceGroupNotFound", "SubscriptionNotFound", "ParentResourceNotFound"}
_PROVIDER_CODES = {"MissingSubscriptionRegistration", "NoRegisteredProviderFound", "SubscriptionNotRegistered"}
_NOT_READY_CODES = {"ServerNotReadyForLongTermBackup"}
# 409s that mean "not now, something else is running", as ARM, the PostgreSQL provider and Azure Backup say it.
_BUSY_CODES = {"Conflict", "OperationInProgress", "AnotherOperationInProgress", "ServerBusy", "ServerIsBusy",
               "ConflictingServerOperation", "UserErrorMaxConcurrentOperationLimitReached", "ResourceBusy"}


def _all_codes(error_code: str, details: list) -> set[str]:
    codes = {error_code} if error_code else set()
    for detail in details or []:
        if isinstance(detail, dict) and isinstance(detail.get("code"), str):
            codes.add(detail["code"])
    return codes


def classify(http_status: int | None, error_code: str = "", details: list | None = None, message: str = "") -> Category:
    """The category of a finished ARM call that got an HTTP answer."""
    codes = _all_codes(error_code, details or [])
    if "NoRegisteredProviderFound" in codes and "api version" in message.lower():
        return Category.REJECTED  # the provider is there; it does not know the api-version we sent
    if http_status == 200 and not codes:
        return Category.PASSED
    if codes & _NOT_READY_CODES:
        return Category.SERVER_NOT_READY
    if http_status == 401 or codes & _SIGNIN_CODES:
        return Category.SIGNIN_REQUIRED
    if http_status == 403 or "AuthorizationFailed" in codes or "LinkedAuthorizationFailed" in codes:
        return Category.PERMISSION_MISSING
    if codes & _PROVIDER_CODES:
        return Category.PROVIDER_NOT_REGISTERED
    if http_status == 404 or codes & _NOT_FOUND_CODES:
        return Category.NOT_FOUND
    if http_status == 429:
        return Category.THROTTLED
    if http_status == 409 or codes & _BUSY_CODES:
        return Category.BUSY
    if http_status is not None and http_status >= 500:
        return Category.AZURE_FAILURE
    if http_status is not None and 400 <= http_status < 500:
        return Category.REJECTED
    return Category.UNEXPECTED_RESPONSE
