"""HTTP basic auth for every route but the health check, and a shared token for webhooks.

Label Studio sends basic-auth credentials on /health, /setup, /predict and START_TRAINING, but never on
annotation webhooks (P9). So /webhook accepts either the basic-auth credentials or, when
``WEBHOOK_TOKEN`` is set, that token in an ``X-Webhook-Token`` header (or as ``Authorization: Bearer``),
which the user adds to the webhook's headers in Label Studio. With basic auth on and no token set,
webhooks stay open so that online learning keeps working; the README says how to close them.
"""

from __future__ import annotations

import hmac

from flask import Request

from labelzoo.settings import Settings

OPEN_ENDPOINTS = frozenset({"health", "index", "static"})
WEBHOOK_ENDPOINT = "webhook"
TOKEN_HEADER = "X-Webhook-Token"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def basic_auth_ok(request: Request, settings: Settings) -> bool:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return False
    return _same(auth.username or "", settings.basic_auth_user or "") and _same(
        auth.password or "", settings.basic_auth_pass or ""
    )


def webhook_token_ok(request: Request, settings: Settings) -> bool:
    token = settings.webhook_token or ""
    presented = request.headers.get(TOKEN_HEADER)
    if presented is None and request.authorization is not None and request.authorization.type == "bearer":
        presented = request.authorization.token
    return presented is not None and _same(presented, token)


def is_allowed(request: Request, endpoint: str | None, settings: Settings) -> bool:
    if endpoint in OPEN_ENDPOINTS:
        return True
    if endpoint == WEBHOOK_ENDPOINT:
        if settings.webhook_token:
            return webhook_token_ok(request, settings) or (
                settings.basic_auth_enabled and basic_auth_ok(request, settings)
            )
        return True
    if not settings.basic_auth_enabled:
        return True
    return basic_auth_ok(request, settings)
