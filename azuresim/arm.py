"""Fake Azure Resource Manager for one operation: the PostgreSQL flexible server ``ltrPreBackup``
POST. Requests are checked in ARM's order (token, api-version, subscription, resource group, RBAC,
resource, body, throttling) and then answered by the server's scripted behaviour, which may be
anything from a clean 200 to a reset connection."""

import base64
import datetime
import json
import socket
import struct
import time
from urllib.parse import unquote

from .state import POSTGRES_NAMESPACE, is_guid, new_guid
from .tokens import ARM_AUDIENCES, InvalidToken
from .web import Response

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
ACTION = "Microsoft.DBforPostgreSQL/flexibleServers/ltrPreBackup/action"
PATH_LITERALS = (
    "subscriptions",
    None,
    "resourcegroups",
    None,
    "providers",
    "microsoft.dbforpostgresql",
    "flexibleservers",
    None,
    "ltrprebackup",
)
JSON_TYPE = "application/json; charset=utf-8"
RG_CHARS = set("-_.()")
CHUNK = 64 * 1024


def _dotnet_time(epoch):
    # ARM prints times the .NET way: 1/8/2026 3:04:05 PM
    d = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    hour, half = d.hour % 12 or 12, "AM" if d.hour < 12 else "PM"
    return f"{d.month}/{d.day}/{d.year} {hour}:{d.minute:02}:{d.second:02} {half}"


class Arm:
    def __init__(self, world, tokens, urls, stopping):
        self.world, self.tokens, self.urls, self.stopping = world, tokens, urls, stopping

    # -- answers ----------------------------------------------------------------------------
    def _finish(self, ctx, response):
        """Add the headers every ARM answer carries."""
        response.header("x-ms-request-id", ctx["request_id"])
        response.header("x-ms-correlation-request-id", ctx["correlation_id"])
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        response.header("x-ms-routing-request-id", f"LOCALSIM:{stamp}:{ctx['request_id']}")
        response.header("Cache-Control", "no-cache")
        response.header("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        response.header("X-Content-Type-Options", "nosniff")
        if not any(name.lower() == "x-ms-ratelimit-remaining-subscription-writes" for name, _ in response.headers):
            remaining, bucket = ctx.get("remaining"), ctx.get("bucket")
            if remaining is None and bucket is not None:  # known only once the caller is authenticated
                with self.world.lock:
                    remaining = bucket.peek()
            if remaining is not None:
                self._ratelimit(response, remaining)
        return response

    @staticmethod
    def _ratelimit(response, remaining):
        response.header("x-ms-ratelimit-remaining-subscription-writes", remaining)
        response.header("x-ms-ratelimit-remaining-subscription-global-writes", remaining)

    def _error(self, ctx, status, code, message, target=None, details=None, additional_info=None, headers=None):
        error = {"code": code, "message": message}
        if target is not None:
            error["target"] = target
        if details is not None:
            error["details"] = details
        if additional_info is not None:
            error["additionalInfo"] = additional_info
        response = Response(status, json.dumps({"error": error}), JSON_TYPE, headers)
        response.header("x-ms-error-code", code)
        return self._finish(ctx, response)

    def _unauthorized(self, ctx, code, message, tenant_id):
        https_url, _ = self.urls()
        challenge = (
            f'Bearer authorization_uri="{https_url}/{tenant_id or "common"}", error="invalid_token", '
            f'error_description="{message.split(". ")[0].rstrip(".")}."'
        )
        return self._error(ctx, 401, code, message, headers=[("WWW-Authenticate", challenge)])

    # -- request ----------------------------------------------------------------------------
    def handle(self, req):
        ctx = {
            "request_id": new_guid(),
            "correlation_id": req.headers.get("x-ms-correlation-request-id") or new_guid(),
        }
        segments = [unquote(s) for s in req.path.rstrip("/").split("/")[1:]]
        if len(segments) != len(PATH_LITERALS) or any(
            lit is not None and seg.lower() != lit for seg, lit in zip(segments, PATH_LITERALS, strict=True)
        ):
            return self._error(
                ctx,
                404,
                "NotFound",
                f"The requested path '{req.path}' is not served by this simulator; it serves POST "
                ".../providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}/ltrPreBackup.",
            )
        sub_id, rg_name, server_name = segments[1], segments[3], segments[7]
        sub = self.world.subscriptions.get(sub_id.lower())
        if req.method != "POST":
            return self._error(
                ctx,
                405,
                "MethodNotAllowed",
                f"The requested resource does not support http method '{req.method}'.",
            )
        claims, failure = self._authenticate(req, ctx, sub)
        if failure:
            return failure
        ctx["bucket"] = self.world.bucket(sub_id, claims["oid"])
        # 2. api-version
        api_version = req.query.get("api-version")
        if not api_version:
            return self._error(
                ctx,
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if api_version not in API_VERSIONS:
            return self._error(
                ctx,
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{api_version}' is invalid. The supported versions are '{','.join(API_VERSIONS)}'.",
            )
        # 3. subscription
        if not is_guid(sub_id):
            return self._error(
                ctx,
                400,
                "InvalidSubscriptionId",
                f"The provided subscription identifier '{sub_id}' is malformed or invalid.",
            )
        if sub is None:
            return self._error(ctx, 404, "SubscriptionNotFound", f"The subscription '{sub_id}' could not be found.")
        if claims["tid"].lower() != sub.tenant_id:
            https_url, _ = self.urls()
            return self._unauthorized(
                ctx,
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer 'https://sts.windows.net/{claims['tid']}/'. It "
                f"must match the tenant 'https://sts.windows.net/{sub.tenant_id}/' associated with this "
                f"subscription. Please use the authority (URL) '{https_url}/{sub.tenant_id}' to get the "
                "token. Note, if the subscription is transferred to another tenant there is no impact to "
                "the services, but information about new tenant could take time to propagate (up to an "
                "hour). If you just transferred your subscription and see this error message, please try "
                "back later.",
                sub.tenant_id,
            )
        if POSTGRES_NAMESPACE.lower() in sub.unregistered_providers:
            message = (
                f"The subscription is not registered to use namespace '{POSTGRES_NAMESPACE}'. See "
                "https://aka.ms/rps-not-found for how to register subscriptions."
            )
            return self._error(
                ctx,
                409,
                "MissingSubscriptionRegistration",
                message,
                target=POSTGRES_NAMESPACE,
                details=[
                    {
                        "code": "MissingSubscriptionRegistration",
                        "target": POSTGRES_NAMESPACE,
                        "message": message,
                    }
                ],
            )
        # 4. resource group
        bad = self._rg_name_problem(rg_name)
        if bad:
            return self._error(ctx, 400, "InvalidResourceGroup", bad)
        rg = sub.resource_groups.get(rg_name.lower())
        if rg is None:
            return self._error(ctx, 404, "ResourceGroupNotFound", f"Resource group '{rg_name}' could not be found.")
        # 5. RBAC
        scope = (
            f"/subscriptions/{sub_id}/resourceGroups/{rg_name}/providers/{POSTGRES_NAMESPACE}"
            f"/flexibleServers/{server_name}"
        )
        server = rg[1].get(server_name.lower())
        upn = str(claims.get("upn", "")).lower()
        allowed = ("*" in sub.principals and self.world.user_by_oid(claims["oid"]) is not None) or (
            upn in sub.principals
        )
        if not allowed or (server is not None and upn in server.deny):
            return self._forbidden(ctx, claims, scope)
        # 6. resource
        if server is None:
            return self._error(
                ctx,
                404,
                "ResourceNotFound",
                f"The Resource '{POSTGRES_NAMESPACE}/flexibleServers/{server_name}' under resource group "
                f"'{rg_name}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        self.world.count_arm_call((sub.id, rg_name, server.name))
        # 7. body
        failure = self._check_body(ctx, req.body)
        if failure:
            return failure
        # 8. throttling
        with self.world.lock:
            ok, remaining, wait = ctx["bucket"].take()
        if not ok:
            self.world.count_throttled()
            response = self._error(
                ctx,
                429,
                "TooManyRequests",
                f"Number of 'write' requests for subscription '{sub.id}' actor '{claims['oid']}' exceeded. "
                f"Please try again after '{wait}' seconds after additional tokens are available. Refer to "
                "https://aka.ms/arm-throttling-token-bucket for additional information.",
                headers=[("Retry-After", str(wait))],
            )
            return response
        ctx["remaining"] = remaining
        # 9. the server's own behaviour
        return self._behave(ctx, server, claims, scope)

    def _authenticate(self, req, ctx, sub):
        tenant_id = sub.tenant_id if sub else None
        header = req.headers.get("Authorization")
        if not header:
            return None, self._unauthorized(
                ctx,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                tenant_id,
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, self._unauthorized(
                ctx,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                tenant_id,
            )
        try:
            claims = self.tokens.verify(token.strip())
        except InvalidToken:
            return None, self._unauthorized(
                ctx, "InvalidAuthenticationToken", "The access token is invalid.", tenant_id
            )
        if claims["aud"] not in ARM_AUDIENCES:
            allowed = ",".join(f"'{a}'" for a in ARM_AUDIENCES)
            return None, self._unauthorized(
                ctx,
                "InvalidAuthenticationToken",
                f"The access token has been obtained for wrong audience or resource '{claims['aud']}'. It "
                f"should exactly match with one of the allowed audiences {allowed}.",
                tenant_id,
            )
        now = time.time()
        if claims["exp"] <= now:
            return None, self._unauthorized(
                ctx,
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{_dotnet_time(claims['exp'])}' is earlier than current "
                f"UTC time '{_dotnet_time(now)}'.",
                tenant_id,
            )
        if claims.get("nbf", 0) > now + 300:
            return None, self._unauthorized(
                ctx, "InvalidAuthenticationToken", "The access token is not yet valid.", tenant_id
            )
        nbf = self._cae_revocation(claims)
        if nbf is not None:
            return None, self._cae_challenge(ctx, claims, nbf)
        return claims, None

    def _cae_revocation(self, claims):
        """Return the nbf a Continuous Access Evaluation challenge must demand, or None."""
        with self.world.lock:
            armed = self.world.pending_challenges.pop(claims["oid"], None)
            revoked = self.world.revoked_utis.get(claims.get("uti"))
        return armed if armed is not None else revoked

    def _cae_challenge(self, ctx, claims, nbf):
        https_url, _ = self.urls()
        demand = json.dumps({"access_token": {"nbf": {"essential": True, "value": str(nbf)}}})
        challenge = (
            f'Bearer authorization_uri="{https_url}/{claims["tid"]}/oauth2/authorize", '
            f'error="insufficient_claims", claims="{base64.b64encode(demand.encode()).decode()}"'
        )
        return self._error(
            ctx,
            401,
            "InvalidAuthenticationToken",
            "Continuous access evaluation resulted in challenge with result: InteractionRequired and "
            "code: TokenIssuedBeforeRevocationTimestamp. Answer the claims challenge in the "
            "WWW-Authenticate header.",
            headers=[("WWW-Authenticate", challenge)],
        )

    @staticmethod
    def _rg_name_problem(name):
        if not 1 <= len(name) <= 90:
            return (
                f"Resource group name '{name}' is invalid. It must be between 1 and 90 characters long. "
                "See https://aka.ms/resource-group-naming-rules for more information."
            )
        invalid = "".join(sorted({c for c in name if not (c.isalnum() or c in RG_CHARS)}))
        if invalid:
            return (
                f"The provided resource group name '{name}' has these invalid characters: '{invalid}'. The "
                "name can only be a letter, digit, '-', '.', '(', ')' or '_'. See "
                "https://aka.ms/resource-group-naming-rules for more information."
            )
        if name.endswith("."):
            return (
                f"Resource group name '{name}' is invalid. It cannot end with a period. See "
                "https://aka.ms/resource-group-naming-rules for more information."
            )
        return None

    def _forbidden(self, ctx, claims, scope):
        return self._error(
            ctx,
            403,
            "AuthorizationFailed",
            f"The client '{claims.get('upn', claims['oid'])}' with object id '{claims['oid']}' does not "
            f"have authorization to perform action '{ACTION}' over scope '{scope}' or the scope is "
            "invalid. If access was recently granted, please refresh your credentials.",
        )

    def _check_body(self, ctx, raw):
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError) as exc:
            return self._error(
                ctx,
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: '{exc.__class__.__name__}: {exc}'.",
            )
        if not isinstance(body, dict):
            return self._error(
                ctx,
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: 'The request body must be "
                "a JSON object with a 'backupSettings' property.'.",
            )
        settings = body.get("backupSettings")
        name = settings.get("backupName") if isinstance(settings, dict) else None
        if name is None:
            return self._error(
                ctx,
                400,
                "MissingRequiredProperty",
                "The request body is missing the required property 'backupSettings.backupName'.",
                target="backupSettings.backupName",
            )
        if not isinstance(name, str) or not name.strip():
            return self._error(
                ctx,
                400,
                "InvalidParameterValue",
                "Invalid value given for parameter 'backupSettings.backupName'. Specify a non-empty string.",
                target="backupSettings.backupName",
            )
        return None

    # -- behaviours -------------------------------------------------------------------------
    def _sleep(self, seconds):
        """Sleep, but wake when the simulator stops; True means 'stop now'."""
        return self.stopping.wait(max(0.0, seconds))

    def _behave(self, ctx, server, claims, scope):
        with self.world.lock:
            server.calls += 1
            call = server.calls
            b = dict(server.behaviour)
        outcome = b["outcome"]
        applies = (b["fail_times"] is None or call <= b["fail_times"]) and (
            b["on_calls"] is None or call in b["on_calls"]
        )
        if not applies:
            outcome = "success"
        if b["latency_ms"] and self._sleep(b["latency_ms"] / 1000):
            return self._error(ctx, 503, "ServiceUnavailable", "The simulator is shutting down.")
        success = json.dumps({"properties": {"numberOfContainers": b["containers"]}}).encode()
        name = server.name

        def ok(body, content_type=JSON_TYPE):
            return self._finish(ctx, Response(200, body, content_type))

        if outcome == "success":
            return ok(success)
        if outcome == "forbidden":
            return self._forbidden(ctx, claims, scope)
        if outcome == "not_ready":
            return self._error(
                ctx,
                400,
                "PostgreSQLFlexOperationFailedUserError",
                "The operation could not be completed because of a user error. See details for more information.",
                details=[
                    {
                        "code": "ServerNotReadyForLongTermBackup",
                        "message": f"The server '{name}' is in state '{b['state']}'. Long-term retention "
                        "backup requires the server to be in state 'Ready'.",
                        "target": name,
                    }
                ],
                additional_info=[
                    {
                        "type": "ServerState",
                        "info": {"serverName": name, "state": b["state"], "requiredState": "Ready"},
                    }
                ],
            )
        if outcome == "throttled":
            self.world.count_throttled()
            response = self._error(
                ctx,
                429,
                "TooManyRequests",
                f"The request to server '{name}' was throttled by Microsoft.DBforPostgreSQL. Retry after "
                "the interval given in the Retry-After header.",
                # The resource provider throttles this server; ARM's own bucket (its headers are added
                # as for any answer) is not what ran out.
                headers=self._retry_headers(b),
            )
            return response
        if outcome == "internal_error":
            return self._error(
                ctx,
                500,
                "InternalServerError",
                f"An unexpected error occured while processing the request. Tracking ID: '{ctx['request_id']}'",
            )
        if outcome == "unavailable":
            return self._error(
                ctx,
                503,
                "ServiceUnavailable",
                "The service is currently unavailable. Please try again later.",
                headers=self._retry_headers(b),
            )
        if outcome == "bad_gateway":
            page = (
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
                "Gateway</h1></center>\r\n<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n</body>\r\n</html>\r\n"
            )
            return self._finish(ctx, Response(502, page, "text/html"))
        if outcome == "html":
            return ok(
                "<!DOCTYPE html><html><head><title>Service maintenance</title></head><body><h1>We'll be "
                "right back</h1><p>This service is undergoing maintenance.</p></body></html>",
                "text/html; charset=utf-8",
            )
        if outcome == "empty":
            return ok(b"")
        if outcome == "invalid_json":
            return ok(b'{"properties": ')
        if outcome == "payload":
            body = b["body"]
            body = body if isinstance(body, (str, bytes)) else json.dumps(body)
            if b["status"] == 200:
                return ok(body)
            return self._finish(ctx, Response(int(b["status"]), body, JSON_TYPE))
        # The rest write to the socket themselves.
        response = self._finish(ctx, Response(200 if outcome != "reset" else 0))
        response.stream = {
            "reset": self._reset,
            "stall_headers": lambda h: self._stall_headers(h, response, success, b["stall"]),
            "stall_body": lambda h: self._stall_body(h, response, success, b["stall"]),
            "trickle": lambda h: self._trickle(h, response, success, b["trickle_interval"]),
            "huge": lambda h: self._huge(h, response, b["containers"], b["huge_bytes"]),
        }[outcome]
        return response

    @staticmethod
    def _retry_headers(b):
        headers = []
        if b["retry_after_ms"] is not None:
            headers += [
                ("retry-after-ms", str(b["retry_after_ms"])),
                ("x-ms-retry-after-ms", str(b["retry_after_ms"])),
            ]
        if b["retry_after"] is not None or b["retry_after_ms"] is None:
            headers.append(("Retry-After", str(b["retry_after"] if b["retry_after"] is not None else 10)))
        return headers

    @staticmethod
    def _start(handler, response, length):
        handler.send_response(response.status)
        for name, value in response.headers:
            handler.send_header(name, value)
        handler.send_header("Content-Type", JSON_TYPE)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()

    @staticmethod
    def _reset(handler):
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN.
        handler.close_connection = True
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()

    def _stall_headers(self, handler, response, body, stall):
        handler.close_connection = True
        if self._sleep(stall):
            return
        self._start(handler, response, len(body))
        handler.wfile.write(body)

    def _stall_body(self, handler, response, body, stall):
        handler.close_connection = True
        self._start(handler, response, len(body))
        handler.wfile.write(body[: len(body) // 2])
        if not self._sleep(stall):
            handler.wfile.write(body[len(body) // 2 :])

    def _trickle(self, handler, response, body, interval):
        handler.close_connection = True
        self._start(handler, response, len(body))
        for i in range(len(body)):
            handler.wfile.write(body[i : i + 1])
            if i + 1 < len(body) and self._sleep(interval):
                return

    def _huge(self, handler, response, containers, size):
        # Valid JSON of exactly ``size`` bytes: the answer padded with a long string.
        head = b'{"properties": {"numberOfContainers": %d, "padding": "' % containers
        tail = b'"}}'
        padding = size - len(head) - len(tail)
        if padding < 0:
            head, tail, padding = b"", b"", size
        handler.close_connection = True
        self._start(handler, response, size)
        handler.wfile.write(head)
        block = b"x" * CHUNK
        while padding > 0 and not self.stopping.is_set():
            n = min(padding, CHUNK)
            handler.wfile.write(block[:n])
            padding -= n
        handler.wfile.write(tail)
