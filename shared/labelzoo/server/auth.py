"""HTTP basic auth for every route but the probes (``/``, ``/health``, ``/ready``), and a shared token for webhooks.

Label Studio sends basic-auth credentials on /health, /setup, /predict and START_TRAINING, but never on
annotation webhooks (P9). So /webhook accepts either the basic-auth credentials or, when
``WEBHOOK_TOKEN`` is set, that token in an ``X-Webhook-Token`` header (or as ``Authorization: Bearer``),
which the user adds to the webhook's headers in Label Studio. With basic auth on, /webhook is never open:
start-up refuses basic auth without a token while annotations are meant to train
(:meth:`labelzoo.settings.Settings.check_auth`), and with ``TRAIN_AFTER_ANNOTATIONS=0`` only basic auth
(Start Training) gets in. Without basic auth every route is open, as the operator chose.
"""

from __future__ import annotations

import hmac

from flask import Request

from labelzoo.settings import Settings

OPEN_ENDPOINTS = frozenset({"health", "index", "ready", "static"})  # probes: orchestrators send no credentials
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
        if settings.webhook_token and webhook_token_ok(request, settings):
            return True
        if settings.basic_auth_enabled:
            return basic_auth_ok(request, settings)
        return not settings.webhook_token
    if not settings.basic_auth_enabled:
        return True
    return basic_auth_ok(request, settings)
