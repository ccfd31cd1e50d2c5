"""Async clients for the HubSpot CRM and QuickBooks Online APIs, over a pluggable transport.

    transport = AiohttpTransport.from_settings(settings)          # one per process; MockTransport in unit tests
    hubspot = HubSpotClient(str(settings.hubspot_base_url), StaticToken(private_app_token), transport)
    qbo = QboClient(str(settings.qbo_base_url), realm_id, QboOAuth.from_settings(
        f"quickbooks:{realm_id}", settings, store=token_store, transport=transport), transport)

Failures raise the `ApiError` kinds of `shared.errors`; `error.transient` says whether to retry later. Pass
`limits=CallLimits.for_qbo(limiter, realm_id, settings)` (or `for_hubspot`) to keep a client under the provider's
rate limits, with one `RateLimiter` per process over a backend every process shares (the store). Pass both clients
of a connection one `coalescer=Coalescer()` to put concurrent single calls together in batch calls (`_batching.py`).
"""

from shared.clients._auth import (
    HubSpotOAuth,
    MemoryTokenStore,
    QboOAuth,
    StaticToken,
    TokenSet,
    TokenSource,
    TokenStore,
)
from shared.clients._batching import Coalescer
from shared.clients._degraded import DegradedReads
from shared.clients._echoes import OurWrites
from shared.clients._limits import CallLimits, MemoryLimits, RateLimiter, bulk_calls
from shared.clients._scopes import REQUESTED_SCOPES, Call, UnknownCall, required_scopes
from shared.clients._transport import AiohttpTransport, MockTransport, Request, Response, Transport
from shared.clients._usage import UsageMeter, UsageRecorder
from shared.clients.hubspot import (
    Association,
    AssociationType,
    HubSpotBatch,
    HubSpotClient,
    HubSpotObject,
    HubSpotProperty,
    NewAssociation,
    SearchPage,
)
from shared.clients.qbo import BatchItemResult, BatchOperation, CdcResult, QboClient, QboEntity, qbo_quote

__all__ = [
    "REQUESTED_SCOPES",
    "AiohttpTransport",
    "Association",
    "AssociationType",
    "BatchItemResult",
    "BatchOperation",
    "Call",
    "CallKind",
    "CallLimits",
    "CdcResult",
    "Coalescer",
    "DegradedReads",
    "HubSpotBatch",
    "HubSpotClient",
    "HubSpotOAuth",
    "HubSpotObject",
    "HubSpotProperty",
    "MemoryLimits",
    "MemoryTokenStore",
    "MockTransport",
    "NewAssociation",
    "OurWrites",
    "QboClient",
    "QboEntity",
    "QboOAuth",
    "RateLimiter",
    "Request",
    "Response",
    "SearchPage",
    "StaticToken",
    "TokenSet",
    "TokenSource",
    "TokenStore",
    "Transport",
    "UnknownCall",
    "UsageMeter",
    "UsageRecorder",
    "bulk_calls",
    "qbo_quote",
    "required_scopes",
]
