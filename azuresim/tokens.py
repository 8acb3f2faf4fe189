"""Minting and checking the simulator's JWTs: v1-style access tokens (as ARM receives them from
Entra) and v2 id tokens, signed RS256 with a key published in the JWKS."""

import base64
import hashlib
import json
import time
import uuid
from typing import TYPE_CHECKING

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

if TYPE_CHECKING:
    from .state import User

ARM_AUDIENCES = (
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
)


class InvalidToken(Exception):
    """The token is malformed, unsigned or not signed by us."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def client_info(user: "User") -> str:
    # MSAL builds the account's home_account_id "<uid>.<utid>" from this.
    return b64url(json.dumps({"uid": user.oid, "utid": user.tenant_id}).encode())


def pairwise_sub(user: "User", client_id: str) -> str:
    # Entra's "sub" is per user and app, unlike "oid".
    return b64url(hashlib.sha256(f"{user.oid}:{client_id}".encode()).digest())[:43]


class TokenService:
    def __init__(self, key: rsa.RSAPrivateKey, https_url: str) -> None:
        self.key, self.https_url = key, https_url
        public = key.public_key()
        self.kid = b64url(hashlib.sha256(public.public_numbers().n.to_bytes(256, "big")).digest())[:27]
        self._public = public

    def jwks(self) -> dict:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._public))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return {"keys": [jwk]}

    def _sign(self, claims: dict, signed: bool = True) -> str:
        if not signed:
            return jwt.encode(claims, None, algorithm="none")
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})

    def access_token(
        self,
        user: "User",
        client_id: str,
        audience: str,
        *,
        scp: str = "user_impersonation",
        xms_cc: list[str] | None = None,
        lifetime: float = 3600,
        issued_at: float | None = None,
        tenant: str | None = None,
        signed: bool = True,
        sid: str | None = None,
    ) -> tuple[str, dict]:
        """Return (token, claims)."""
        iat = int(issued_at if issued_at is not None else time.time())
        tid = (tenant or user.tenant_id).lower()
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tid}/",
            "iat": iat,
            "nbf": iat,
            "exp": iat + int(lifetime),
            "appid": client_id,
            "appidacr": "1",
            "idp": f"https://sts.windows.net/{tid}/",
            "name": user.name,
            "oid": user.oid,
            "scp": scp,
            "sub": pairwise_sub(user, client_id),
            "tid": tid,
            "unique_name": user.upn,
            "upn": user.upn,
            "uti": b64url(uuid.uuid4().bytes),
            "ver": "1.0",
            "sid": sid or str(uuid.uuid4()),
        }
        if xms_cc:
            claims["xms_cc"] = list(xms_cc)
        return self._sign(claims, signed), claims

    def id_token(self, user: "User", client_id: str, *, nonce: str | None = None, lifetime: int = 3600,
                 sid: str | None = None) -> str:
        iat = int(time.time())
        claims = {
            "aud": client_id,
            "iss": f"{self.https_url}/{user.tenant_id}/v2.0",
            "iat": iat,
            "nbf": iat,
            "exp": iat + int(lifetime),
            "name": user.name,
            "oid": user.oid,
            "preferred_username": user.upn,
            "sub": pairwise_sub(user, client_id),
            "tid": user.tenant_id,
            "ver": "2.0",
        }
        if sid:
            claims["sid"] = sid
        if nonce:
            claims["nonce"] = nonce
        if user.app_roles:  # Entra sends `roles` only when the user holds at least one app role
            claims["roles"] = list(user.app_roles)
        return self._sign(claims)

    def verify(self, token: str) -> dict:
        """Check the signature only; audience, expiry and tenant are the caller's, in ARM's order."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256" or header.get("kid") != self.kid:
                raise InvalidToken("unsigned or signed by an unknown key")
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if not all(k in claims for k in ("aud", "exp", "tid", "oid")):
            raise InvalidToken("required claims missing")
        return claims
