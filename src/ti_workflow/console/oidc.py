"""Agents' single sign-on by OpenID Connect (ProConnect-compatible).

* Authorization code flow with PKCE (S256), ``state`` and ``nonce``: the three secrets
  of a sign-in in progress live in one HttpOnly cookie (``tiw_oidc``, 10 minutes) of the
  browser that started it; the callback refuses a ``state`` that is not that cookie's.
* The ID token's signature is checked with the provider's published keys (JWKS, fetched
  again once when a key is unknown: rotation) and its claims with ``joserfc``, authlib's
  JOSE library: ``iss`` is the configured issuer, ``aud`` the client id, ``exp`` not
  passed, ``nonce`` the cookie's. The e-mail comes from the ID token or, as ProConnect
  does, from the userinfo endpoint (JSON or a signed JWT, checked the same way).
* The e-mail is matched to an existing account (as the e-mailed link does); a login
  never creates one. An unknown address gets a French page.
* Logout revokes the console session and sends the browser to the provider's
  ``end_session_endpoint`` with the ID token as hint (kept in an HttpOnly cookie).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

from ti_workflow.console import auth
from ti_workflow.settings import Settings

log = logging.getLogger("ti_workflow.console")
FLOW_COOKIE = "tiw_oidc"
ID_COOKIE = "tiw_oidc_id"
FLOW_LIFETIME = 600
"""Seconds between the start of a sign-in and the provider's answer."""
LEEWAY = 60
"""Seconds of clock difference tolerated on ``exp`` and ``iat``."""
CALLBACK = "/connexion/oidc/retour"
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
METADATA_TTL = 3600.0


class SsoRefused(Exception):
    """The sign-in cannot go on; ``reason`` says why (the page explains it in French)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Flow:
    """A sign-in in progress, as kept in the browser's ``tiw_oidc`` cookie."""

    state: str
    nonce: str
    verifier: str
    started: int
    suite: str

    def cookie(self) -> str:
        raw = json.dumps([self.state, self.nonce, self.verifier, self.started, self.suite])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def from_cookie(cls, value: str) -> Flow | None:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            state, nonce, verifier, started, suite = json.loads(raw)
        except (ValueError, TypeError):
            return None
        if not all(isinstance(x, str) for x in (state, nonce, verifier, suite)):
            return None
        if not isinstance(started, int):
            return None
        return cls(state, nonce, verifier, started, suite)


@dataclass(frozen=True)
class Identity:
    email: str
    given_name: str | None
    usual_name: str | None
    id_token: str


class Provider:
    """The provider's metadata and keys, fetched once and kept (keys fetched again on an
    unknown ``kid``)."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self.client_secret = settings.oidc_client_secret
        self.scopes = settings.oidc_scopes
        self.timeout = timeout
        self._metadata: dict[str, Any] | None = None
        self._fetched = 0.0
        self._keys: KeySet | None = None

    def _get(self, url: str) -> httpx.Response:
        try:
            response = httpx.get(url, timeout=self.timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise SsoRefused("unreachable", f"{url}: {exc}") from None
        if response.status_code != 200:
            raise SsoRefused("unreachable", f"{url}: HTTP {response.status_code}")
        return response

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._fetched > METADATA_TTL:
            found = self._get(self.issuer + "/.well-known/openid-configuration").json()
            if not isinstance(found, dict) or found.get("issuer", "").rstrip("/") != self.issuer:
                raise SsoRefused("metadata", "the discovery document names another issuer")
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(name), str):
                    raise SsoRefused("metadata", f"no {name}")
            self._metadata, self._fetched = found, time.monotonic()
        return self._metadata

    def keys(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            self._keys = KeySet.import_key_set(self._get(self.metadata()["jwks_uri"]).json())
        return self._keys

    # --- the flow -------------------------------------------------------------------

    def authorization_url(self, redirect_uri: str, flow: Flow) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scopes,
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": create_s256_code_challenge(flow.verifier),
            "code_challenge_method": "S256",
        }
        return f"{self.metadata()['authorization_endpoint']}?{urlencode(query)}"

    def verified(self, token: str, now: int, nonce: str | None) -> dict[str, Any]:
        """The claims of a JWT from this provider for this client, signature and claims
        checked (``nonce`` too when given)."""
        try:
            decoded = self._decode(token)
        except JoseError:
            decoded = self._decode(token, refresh=True)  # the provider may have rotated
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.client_id},
            "sub": {"essential": True},
        }
        if nonce is not None:
            options["exp"] = {"essential": True}
            options["iat"] = {"essential": True}
            options["nonce"] = {"essential": True, "value": nonce}
        try:
            jwt.JWTClaimsRegistry(now=now, leeway=LEEWAY, **options).validate(decoded.claims)
        except JoseError as exc:
            raise SsoRefused(_claim_reason(exc), str(exc)) from None
        claims: dict[str, Any] = decoded.claims
        return claims

    def _decode(self, token: str, refresh: bool = False) -> jwt.Token:
        try:
            return jwt.decode(token, self.keys(refresh), algorithms=list(SIGNING_ALGORITHMS))
        except JoseError:
            if refresh:
                raise SsoRefused("signature", "the token's signature does not verify") from None
            raise
        except ValueError as exc:  # not a JWT at all
            raise SsoRefused("signature", str(exc)) from None

    def exchange(self, code: str, redirect_uri: str, flow: Flow, now: int) -> Identity:
        """The code for tokens, the ID token verified, the e-mail found."""
        try:
            response = httpx.post(
                self.metadata()["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": flow.verifier,
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
                headers={"Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise SsoRefused("unreachable", str(exc)) from None
        tokens = response.json() if response.status_code == 200 else None
        if not isinstance(tokens, dict) or not isinstance(tokens.get("id_token"), str):
            raise SsoRefused("token", f"HTTP {response.status_code}: {response.text[:300]}")
        id_token = tokens["id_token"]
        claims = self.verified(id_token, now, flow.nonce)
        if not isinstance(claims.get("email"), str) and isinstance(tokens.get("access_token"), str):
            claims = {**self.userinfo(tokens["access_token"], claims["sub"], now), **claims}
        email = auth.clean_address(str(claims.get("email") or ""))
        if email is None:
            raise SsoRefused("no_email", "the provider gave no usable e-mail address")
        given, usual = claims.get("given_name"), claims.get("usual_name")
        return Identity(
            email,
            given if isinstance(given, str) else None,
            usual if isinstance(usual, str) else None,
            id_token,
        )

    def userinfo(self, access_token: str, sub: str, now: int) -> dict[str, Any]:
        endpoint = self.metadata().get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        try:
            response = httpx.get(
                endpoint,
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise SsoRefused("unreachable", str(exc)) from None
        if response.status_code != 200:
            raise SsoRefused("userinfo", f"HTTP {response.status_code}")
        if response.headers.get("content-type", "").startswith("application/jwt"):
            found = self.verified(response.text.strip(), now, None)  # ProConnect signs it
            log.debug("single sign-on: signed userinfo verified")
        else:
            found = response.json()
        if not isinstance(found, dict) or found.get("sub") != sub:
            raise SsoRefused("userinfo", "the userinfo answer is about another person")
        return found

    def logout_url(self, id_token: str, after: str) -> str | None:
        endpoint = self.metadata().get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        query = {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": after,
            "client_id": self.client_id,
            "state": generate_token(24),
        }
        return f"{endpoint}?{urlencode(query)}"


def _claim_reason(exc: JoseError) -> str:
    if isinstance(exc, ExpiredTokenError):
        return "expired"
    if isinstance(exc, InvalidClaimError | MissingClaimError) and exc.claim == "nonce":
        return "nonce"
    return "claims"


def new_flow(suite: str, now: datetime) -> Flow:
    return Flow(
        generate_token(32), generate_token(32), generate_token(64), int(now.timestamp()), suite
    )


def check_flow(flow: Flow | None, state: str, now: datetime) -> Flow:
    if flow is None:
        raise SsoRefused("no_flow", "no sign-in in progress in this browser")
    if not auth.same(state, flow.state):
        raise SsoRefused("state", "the state does not match this browser's sign-in")
    if int(now.timestamp()) - flow.started > FLOW_LIFETIME:
        raise SsoRefused("flow_expired", "the sign-in took more than 10 minutes")
    return flow


def provider_for(app_state: Any, settings: Settings) -> Provider:
    """The app's one :class:`Provider` (metadata and keys kept between requests)."""
    found: Provider | None = getattr(app_state, "oidc_provider", None)
    if found is None or found.issuer != settings.oidc_issuer:
        found = Provider(settings)
        app_state.oidc_provider = found
    return found
