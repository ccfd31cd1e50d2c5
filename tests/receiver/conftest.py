"""Receiver test helpers: settings with generated secrets, signed requests, an in-memory publisher."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Sequence

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from services.receiver import create_app
from shared import signatures
from shared.asgi import AppServer, serving
from shared.broker import EventPublisher, Lane
from shared.config import Settings
from shared.envelope import ChangeEnvelope
from shared.errors import BrokerUnavailable


def make_settings(**overrides: object) -> Settings:
    fields: dict[str, object] = {
        "hubspot_client_secret": SecretStr(secrets.token_hex(16)),
        "intuit_verifier_token": SecretStr(secrets.token_hex(16)),
    }
    fields.update(overrides)
    return Settings(**fields)  # type: ignore[arg-type]


class InMemoryPublisher:
    """Stands in for RabbitMQ: `up` switches it, `published` is what it confirmed."""

    def __init__(self) -> None:
        self.up = True
        self.published: list[ChangeEnvelope] = []

    @property
    def ready(self) -> bool:
        return self.up

    async def start(self) -> None:
        pass

    async def publish(self, envelopes: Sequence[ChangeEnvelope], lane: Lane = Lane.LIVE) -> None:
        if not self.up:
            raise BrokerUnavailable("down")
        self.published.extend(envelopes)

    async def close(self) -> None:
        pass


class WebhookClient:
    """Sends correctly (or deliberately incorrectly) signed webhooks to a running receiver."""

    def __init__(self, session: aiohttp.ClientSession, server: AppServer, settings: Settings) -> None:
        self.session = session
        self.server = server
        self.settings = settings
        assert settings.hubspot_client_secret is not None
        assert settings.intuit_verifier_token is not None
        self.client_secret = settings.hubspot_client_secret.get_secret_value()
        self.verifier_token = settings.intuit_verifier_token.get_secret_value()

    def hubspot_headers(self, body: bytes, path: str, *, timestamp_ms: int | None = None) -> dict[str, str]:
        ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        base = str(self.settings.public_url).rstrip("/") if self.settings.public_url else self.server.url
        return {
            "Content-Type": "application/json",
            "X-HubSpot-Request-Timestamp": ts,
            "X-HubSpot-Signature-v3": signatures.hubspot_v3(self.client_secret, "POST", base + path, body, ts),
            "X-HubSpot-Signature-Version": "v1",
            "X-HubSpot-Signature": signatures.hubspot_v1(self.client_secret, body),
        }

    async def hubspot(
        self, events: object, *, path: str = "/webhooks/hubspot", headers: dict[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        body = events if isinstance(events, bytes) else orjson.dumps(events)
        sent = headers if headers is not None else self.hubspot_headers(body, path)
        async with self.session.post(self.server.url + path, data=body, headers=sent) as response:
            await response.read()
            return response

    async def intuit(
        self, document: object, *, content_type: str = "application/json", signature: str | None = None
    ) -> aiohttp.ClientResponse:
        body = document if isinstance(document, bytes) else orjson.dumps(document)
        headers = {
            "Content-Type": content_type,
            "intuit-signature": signature or signatures.intuit(self.verifier_token, body),
        }
        async with self.session.post(self.server.url + "/webhooks/intuit", data=body, headers=headers) as response:
            await response.read()
            return response


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher()


@pytest.fixture
async def client(settings: Settings, publisher: EventPublisher) -> AsyncIterator[WebhookClient]:
    async with serving(create_app(settings, publisher)) as server, aiohttp.ClientSession() as session:
        yield WebhookClient(session, server, settings)
