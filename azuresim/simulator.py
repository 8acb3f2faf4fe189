"""The ``Simulator``: starts the two loopback listeners (HTTPS for discovery, token endpoint, JWKS
and ARM; plain HTTP for the browser-facing sign-in pages) and offers the knobs tests and the demo
launcher turn at run time.

Where things are: entra.py (token endpoint, discovery) and signin.py (authorize, logout) share
entra_errors.py; arm.py (routing and ARM's checks) answers ltrPreBackup through behaviours.py and the
reads through inventory.py, with every refusal a row of arm_errors.py and its constants in armspec.py;
state.py holds the world, tokens.py the JWTs, pki.py the CA, web.py the HTTP plumbing."""

import os
import shutil
import ssl
import tempfile
import threading
import time
from collections import deque

from . import pki
from .arm import Arm
from .entra import Entra
from .signin import SignInPages
from .state import Stats, World, load_scenario
from .tokens import TokenService
from .web import Request, Response

# Listening on every interface is the caller's explicit choice; URLs then name the loopback address.
WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104


class Simulator:
    def __init__(self, scenario: dict | str, host: str = "127.0.0.1", https_port: int = 0, http_port: int = 0,
                 state_dir: str | None = None) -> None:
        self._scenario = load_scenario(scenario)
        self.world = World(self._scenario)
        self.host = host
        self._ports = (https_port, http_port)
        self._own_state_dir = state_dir is None
        self.state_dir = state_dir
        self._listeners = []
        self._threads = []
        self._stopping = threading.Event()
        self.https_url = self.http_url = None
        # Every request either listener received, oldest first (bounded): what reached the socket and when.
        self._received = deque(maxlen=200_000)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Simulator":
        # Imported here so that merely importing azuresim stays cheap.
        from .web import Listener

        if self.state_dir is None:
            self.state_dir = tempfile.mkdtemp(prefix="azuresim-")
        os.makedirs(self.state_dir, exist_ok=True)
        hosts = ["127.0.0.1", "localhost"]
        if self.host not in hosts and self.host not in WILDCARDS:
            hosts.append(self.host)
        ca_cert, ca_key = pki.ensure_ca(self.state_dir)
        cert_path, key_path = pki.ensure_leaf(self.state_dir, ca_cert, ca_key, hosts)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        self._stopping.clear()
        https = Listener((self.host, self._ports[0]), self._route_https, "https", context, self._received.append)
        http = Listener((self.host, self._ports[1]), self._route_http, "http", None, self._received.append)
        self._listeners = [https, http]
        url_host = "127.0.0.1" if self.host in WILDCARDS else self.host
        self.https_url = f"https://{url_host}:{https.server_address[1]}"
        self.http_url = f"http://{url_host}:{http.server_address[1]}"
        self.tokens = TokenService(pki.ensure_signing_key(self.state_dir), self.https_url)
        urls = lambda: (self.https_url, self.http_url)  # noqa: E731
        self.entra = Entra(self.world, self.tokens, urls)
        self.signin = SignInPages(self.world, urls)
        self.arm = Arm(self.world, self.tokens, urls, self._stopping)
        self.inventory = self.arm.inventory  # its knobs: page_size, throttle_retry_after
        for listener in self._listeners:
            thread = threading.Thread(
                target=listener.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"azuresim-{listener.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled and trickling answers
        # Shut the listeners down side by side: each shutdown() waits for a poll of its loop.
        stoppers = [threading.Thread(target=listener.shutdown) for listener in self._listeners]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for listener in self._listeners:
            listener.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listeners, self._threads = [], []
        if self._own_state_dir and self.state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _route_https(self, req: Request) -> Response:
        if req.path.lower().rstrip("/") == "/subscriptions" or req.path.lower().startswith("/subscriptions/"):
            return self.arm.handle(req)
        return self.entra.route_https(req)

    def _route_http(self, req: Request) -> Response:
        return self.signin.route(req)

    # -- addresses --------------------------------------------------------------------------
    @property
    def ca_path(self) -> str:
        return os.path.join(self.state_dir, pki.CA_FILE)

    @property
    def arm_url(self) -> str:
        return self.https_url

    def authority(self, tenant: str = "organizations") -> str:
        return f"{self.https_url}/{tenant}"

    # -- run-time knobs ---------------------------------------------------------------------
    def set_behaviour(self, subscription_id: str, resource_group: str, server_name: str, **behaviour) -> None:
        """Replace a server's behaviour (creating the server if missing). ``deny=[upn, ...]``, if
        given, replaces the server's RBAC deny list; it is not part of the behaviour."""
        self.world.set_behaviour(subscription_id, resource_group, server_name, **behaviour)

    def set_ltr_backups(self, subscription_id: str, resource_group: str, server_name: str,
                        backups: list[dict] | None = None, behaviour: dict | None = None) -> None:
        """Replace a server's LTR backup operations (azuresim.ltr_backups says their keys) and/or the
        behaviour their reads answer with (e.g. ``{"outcome": "unavailable", "fail_times": 1}``)."""
        self.world.set_ltr_backups(subscription_id, resource_group, server_name, backups, behaviour)

    def remove_ltr_backup(self, subscription_id: str, resource_group: str, server_name: str, name: str) -> None:
        """An LTR backup operation disappears from Azure (no longer listed, its GET answers 404)."""
        self.world.remove_ltr_backup(subscription_id, resource_group, server_name, name)

    def remove_server(self, subscription_id: str, resource_group: str, server_name: str) -> None:
        self.world.remove_server(subscription_id, resource_group, server_name)

    def reset_calls(self) -> None:
        self.world.reset_calls()
        self._received.clear()

    def received(self, path_suffix: str = "", method: str | None = None) -> list[Request]:
        """The requests that reached the simulator, oldest first, as ``web.Request`` objects (method, path,
        query, headers, body, ``arrived_at`` in time.monotonic()), optionally only those whose path ends with
        ``path_suffix`` (compared without case) and of one method."""
        suffix = path_suffix.lower()
        return [
            r for r in list(self._received)
            if r.path.lower().endswith(suffix) and (method is None or r.method == method)
        ]

    def reset(self) -> None:
        """Back to the scenario as loaded: behaviours, flags, buckets, grants and counters. The CA and
        signing key stay, so tokens issued before still verify."""
        self._received.clear()
        fresh = World(self._scenario)
        with self.world.lock:
            for name, value in vars(fresh).items():
                if name != "lock":
                    setattr(self.world, name, value)

    def set_throttle(self, capacity: float | None = None, refill_per_second: float | None = None, *,
                     read_capacity: float | None = None, read_refill_per_second: float | None = None) -> None:
        """Change ARM's write bucket (and, if given, its read bucket); every bucket starts full again."""
        self.world.set_throttle(capacity, refill_per_second, read_capacity, read_refill_per_second)

    def revoke_refresh_tokens(self, upn: str) -> None:
        self.world.revoke_refresh_tokens(upn)

    def set_user_flags(self, upn: str, *, mfa_required: bool | None = None, consent_required: bool | None = None,
                       refresh_revoked: bool | None = None) -> None:
        self.world.set_user_flags(upn, mfa_required, consent_required, refresh_revoked)

    def set_app_roles(self, upn: str, roles: list[str]) -> None:
        """Assign ``upn`` these app roles (what the next ID token's `roles` claim lists); [] removes them all."""
        with self.world.lock:
            self.world.user(upn).app_roles = [str(r) for r in roles]

    def revoke_sessions(self, upn: str) -> None:
        """CAE: ARM challenges every access token issued to ``upn`` so far."""
        self.world.revoke_sessions(upn)

    def challenge_next(self, upn: str) -> None:
        """CAE: ARM challenges ``upn``'s next request once, whatever its token."""
        self.world.challenge_next(upn)

    def set_token_lifetimes(self, access: int | None = None, refresh: int | None = None) -> None:
        with self.world.lock:
            if access is not None:
                self.world.access_lifetime = int(access)
            if refresh is not None:
                self.world.refresh_lifetime = int(refresh)

    def issue_access_token(
        self,
        upn: str,
        *,
        audience: str = "https://management.azure.com",
        expires_in: float = 3600,
        signed: bool = True,
        tenant: str | None = None,
        client_id: str | None = None,
        issued_at: float | None = None,
        xms_cc: list[str] | None = None,
    ) -> str:
        """Mint an access token directly (no sign-in), e.g. expired, wrong-audience or unsigned."""
        user = self.world.user(upn)
        client_id = client_id or next(iter(self.world.apps), "00000000-0000-0000-0000-000000000000")
        now = time.time() if issued_at is None else issued_at
        # An expired token must also have been issued in the past, or its lifetime would be negative.
        iat = min(now, now + expires_in - 60) if expires_in <= 0 else now
        token, claims = self.tokens.access_token(
            user,
            client_id,
            audience,
            xms_cc=xms_cc,
            lifetime=now + expires_in - iat,
            issued_at=iat,
            tenant=tenant,
            signed=signed,
        )
        self.world.record_uti(user.oid, claims["uti"])
        return token

    @property
    def stats(self) -> Stats:
        return self.world.stats()
