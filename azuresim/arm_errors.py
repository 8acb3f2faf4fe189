"""Every error the simulated ARM answers, as one table: why -> (HTTP status, ARM error code, message
template). Handlers raise ``ArmError(why, **fields)``; ``arm.Arm`` renders it in ARM's ``ErrorResponse``
shape. The messages follow real ARM's wording, so a client cannot pass its tests on text ARM never sends."""

from dataclasses import dataclass, field
from typing import Any

_RG_RULES = "See https://aka.ms/resource-group-naming-rules for more information."
_REFRESH = "If access was recently granted, please refresh your credentials."

ERRORS: dict[str, tuple[int, str, str]] = {
    # routing
    "path_not_served": (404, "NotFound", "The requested path '{path}' is not served by this simulator; it serves "
                        "the Microsoft.DBforPostgreSQL flexible server reads, provider registration and POST "
                        ".../flexibleServers/{{name}}/ltrPreBackup."),
    "method_not_allowed": (405, "MethodNotAllowed", "The requested resource does not support http method '{method}'."),
    # the token
    "no_authorization": (401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."),
    "bad_authorization": (401, "AuthenticationFailed",
                          "Authentication failed. The 'Authorization' header is provided in an invalid format."),
    "invalid_token": (401, "InvalidAuthenticationToken", "The access token is invalid."),
    "wrong_audience": (401, "InvalidAuthenticationToken",
                       "The access token has been obtained for wrong audience or resource '{audience}'. It should "
                       "exactly match with one of the allowed audiences {allowed}."),
    "expired_token": (401, "ExpiredAuthenticationToken",
                      "The access token expiry UTC time '{expiry}' is earlier than current UTC time '{now}'."),
    "token_not_yet_valid": (401, "InvalidAuthenticationToken", "The access token is not yet valid."),
    "cae_challenge": (401, "InvalidAuthenticationToken",
                      "Continuous access evaluation resulted in challenge with result: InteractionRequired and "
                      "code: TokenIssuedBeforeRevocationTimestamp. Answer the claims challenge in the "
                      "WWW-Authenticate header."),
    "wrong_tenant": (401, "InvalidAuthenticationTokenTenant",
                     "The access token is from the wrong issuer 'https://sts.windows.net/{token_tenant}/'. It must "
                     "match the tenant 'https://sts.windows.net/{tenant}/' associated with this subscription. Please "
                     "use the authority (URL) '{authority}' to get the token. Note, if the subscription is "
                     "transferred to another tenant there is no impact to the services, but information about new "
                     "tenant could take time to propagate (up to an hour). If you just transferred your "
                     "subscription and see this error message, please try back later."),
    # api-version: ARM's own types (/subscriptions, providers) versus a resource provider's types
    "missing_api_version": (400, "MissingApiVersionParameter",
                            "The api-version query parameter (?api-version=) is required for all requests."),
    "invalid_api_version": (400, "InvalidApiVersionParameter",
                            "The api-version '{api_version}' is invalid. The supported versions are '{supported}'."),
    "no_registered_provider": (400, "NoRegisteredProviderFound",
                               "No registered resource provider found for location '{location}' and API version "
                               "'{api_version}' for type '{type}'. The supported api-versions are '{supported}'. "
                               "The supported locations are '{locations}'."),
    # subscription, provider, resource group
    "invalid_subscription": (400, "InvalidSubscriptionId",
                             "The provided subscription identifier '{subscription}' is malformed or invalid."),
    "subscription_not_found": (404, "SubscriptionNotFound", "The subscription '{subscription}' could not be found."),
    "provider_not_registered": (409, "MissingSubscriptionRegistration",
                                "The subscription is not registered to use namespace '{namespace}'. See "
                                "https://aka.ms/rps-not-found for how to register subscriptions."),
    "rg_name_length": (400, "InvalidResourceGroup",
                       "Resource group name '{name}' is invalid. It must be between 1 and 90 characters long. "
                       + _RG_RULES),
    "rg_name_chars": (400, "InvalidResourceGroup",
                      "The provided resource group name '{name}' has these invalid characters: '{invalid}'. The "
                      "name can only be a letter, digit, '-', '.', '(', ')' or '_'. " + _RG_RULES),
    "rg_name_period": (400, "InvalidResourceGroup",
                       "Resource group name '{name}' is invalid. It cannot end with a period. " + _RG_RULES),
    "rg_not_found": (404, "ResourceGroupNotFound", "Resource group '{rg}' could not be found."),
    # RBAC and the resource
    "authorization_failed": (403, "AuthorizationFailed",
                             "The client '{client}' with object id '{oid}' does not have authorization to perform "
                             "action '{action}' over scope '{scope}' or the scope is invalid. " + _REFRESH),
    "resource_not_found": (404, "ResourceNotFound",
                           "The Resource '{namespace}/flexibleServers/{server}' under resource group '{rg}' was not "
                           "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
    "ltr_backup_not_found": (404, "ResourceNotFound",
                             "The requested long term retention backup operation '{backup}' was not found for "
                             "server '{server}'."),
    # the body
    "body_not_json": (400, "InvalidRequestContent",
                      "The request content was invalid and could not be deserialized: '{problem}'."),
    "body_not_object": (400, "InvalidRequestContent",
                        "The request content was invalid and could not be deserialized: 'The request body must be "
                        "a JSON object with a 'backupSettings' property.'."),
    "backup_name_missing": (400, "MissingRequiredProperty",
                            "The request body is missing the required property 'backupSettings.backupName'."),
    "backup_name_invalid": (400, "InvalidParameterValue",
                            "Invalid value given for parameter 'backupSettings.backupName'. Specify a non-empty "
                            "string."),
    # ARM's own token buckets (reads and writes, per subscription and principal)
    "subscription_throttled": (429, "SubscriptionRequestsThrottled",
                               "Number of '{kind}' requests for {scope} '{scope_id}' actor '{oid}' exceeded. Please "
                               "try again after '{wait}' seconds after additional tokens are available. Refer to "
                               "https://aka.ms/arm-throttling"),
    # the PostgreSQL resource provider's own answers (scripted per server)
    "server_not_ready": (400, "PostgreSQLFlexOperationFailedUserError",
                         "The operation could not be completed because of a user error. See details for more "
                         "information."),
    "rp_throttled": (429, "TooManyRequests",
                     "The request to server '{server}' was throttled by Microsoft.DBforPostgreSQL. Retry after the "
                     "interval given in the Retry-After header."),
    "internal_error": (500, "InternalServerError",
                       "An unexpected error occured while processing the request. Tracking ID: '{request_id}'"),
    "unavailable": (503, "ServiceUnavailable", "The service is currently unavailable. Please try again later."),
    "shutting_down": (503, "ServiceUnavailable", "The simulator is shutting down."),
}


@dataclass
class ArmError(Exception):
    """One refusal: ``why`` names its row in ERRORS, ``fields`` fill the message template."""

    why: str
    fields: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    details: list | None = None
    additional_info: list | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def status(self) -> int:
        return ERRORS[self.why][0]

    @property
    def code(self) -> str:
        return ERRORS[self.why][1]

    @property
    def message(self) -> str:
        return ERRORS[self.why][2].format(**self.fields)

    def body(self) -> dict:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        for key, value in (("target", self.target), ("details", self.details),
                           ("additionalInfo", self.additional_info)):
            if value is not None:
                error[key] = value
        return {"error": error}


def refuse(why: str, *, target: str | None = None, details: list | None = None,
           additional_info: list | None = None, headers: list | None = None, **fields: Any) -> ArmError:
    """Build the ArmError for ``why``; ``raise refuse(...)`` reads as the sentence it is."""
    if why not in ERRORS:
        raise KeyError(f"no ARM error {why!r}")
    return ArmError(why, fields, target, details, additional_info, list(headers or []))
