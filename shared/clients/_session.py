"""One authorized JSON call to a provider: URL and body encoding, bearer token, the single retry after a 401 (or
`AuthRevoked` when there is no newer token to retry with), the error mapping, rate limits, metrics, the monthly
usage count. Both clients make
every call through an `ApiSession`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import quote, urlencode

from shared import money
from shared.clients._auth import TokenSource
from shared.clients._limits import CallLimits
from shared.clients._metrics import measured
from shared.clients._transport import Request, Response, Transport
from shared.clients._usage import UsageMeter
from shared.errors import ApiError, AuthRevoked, TransportError, Unauthorized
from shared.logging import get_logger
from shared.quotas import Admission

log = get_logger(__name__)

QueryParams = Sequence[tuple[str, str]]
# The error an answer carries, or None when it is a success (QBO can put a Fault inside a 200).
Classifier = Callable[[Response], ApiError | None]


def path_segment(value: str) -> str:
    """An id or name as one URL path segment (HubSpot `idProperty` values can be emails)."""
    return quote(value, safe="")


class ApiSession:
    def __init__(
        self,
        provider: str,
        base_url: str,
        auth: TokenSource,
        transport: Transport,
        classify: Classifier,
        limits: CallLimits | None = None,
        usage: UsageMeter | None = None,
    ) -> None:
        self.provider = provider
        self._base_url = base_url.rstrip("/")
        self._auth = auth
        self._transport = transport
        self._classify = classify
        self._limits = limits
        self._usage = usage

    async def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: QueryParams = (),
        json: Any = None,
    ) -> Response:
        """Send, and return the successful answer or raise its `ApiError`. `operation` labels the metrics."""
        url = self._base_url + path
        if params:
            url += "?" + urlencode(params, quote_via=quote)
        body = b"" if json is None else money.dumps(json)  # Decimals as the exact numbers they hold
        headers = {"Accept": "application/json"}
        if json is not None:
            headers["Content-Type"] = "application/json"
        token = await self._auth.access_token()
        try:
            return await self._attempt(operation, Request(method, url, {**headers, **_bearer(token)}, body))
        except Unauthorized as refused:
            await self._auth.on_unauthorized(token)
            fresh = await self._auth.access_token()
            if fresh == token:
                # Nothing newer to try (a private-app token, revoked or rotated): the account's authorization is
                # gone, so the connection pauses instead of failing its records one by one.
                raise AuthRevoked(
                    f"{refused.message} (no newer token: reconnect the account)",
                    provider=self.provider,
                    status=refused.status,
                    code=refused.code,
                    trace_id=refused.trace_id,
                ) from refused
            return await self._attempt(operation, Request(method, url, {**headers, **_bearer(fresh)}, body))

    async def _attempt(self, operation: str, request: Request) -> Response:
        async with self._admitted(operation) as admission:
            with measured(self.provider, operation):
                try:
                    response = await self._transport.send(request)
                except OSError as exc:
                    # ConnectionError, TimeoutError: no answer, the write may or may not have happened
                    raise TransportError(f"{type(exc).__name__}: {exc}", provider=self.provider) from exc
                if self._usage is not None:  # answered, so the provider counted it (errors too: the stricter reading)
                    self._usage.count(operation)
                error = self._classify(response)
                if self._limits is not None and admission is not None:
                    await self._limits.observe(operation, admission, response, error)
                if error is not None:
                    log.debug(
                        "api_error",
                        provider=self.provider,
                        operation=operation,
                        status=error.status,
                        code=error.code,
                        trace_id=error.trace_id,
                    )
                    raise error
                return response

    def _admitted(self, operation: str) -> AbstractAsyncContextManager[Admission | None]:
        """The call's rate-limit quota, held until its answer is in (waiting first if it does not fit)."""
        if self._limits is None:
            return contextlib.nullcontext()
        return self._limits.admitted(operation)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
