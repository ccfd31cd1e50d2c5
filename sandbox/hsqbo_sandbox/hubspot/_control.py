"""The HubSpot sandbox's own control routes, JSON under `/_sandbox/`; the shared ones (requests, faults, clock,
webhooks, state) and the conventions (snake_case, portals named by `portal_id`, errors) are in
`sandbox/hsqbo_sandbox/_control.py`. A refusal by a HubSpot rule carries HubSpot's error body in "provider_error".

GET   accounts                 {"accounts": [{"portal_id", "burst_limit", "daily_limit", "search_per_second",
                               "search_result_cap", "allow_open_invoice_delete", "company_currency" ("USD"),
                               "additional_currencies" ([]), "time_zone" ("US/Eastern")}]}
POST  accounts                 {"portal_id"?, and any of those settings} -> 201 the new portal
PATCH accounts/{portal_id}     {settings to change} -> the portal (its limits live here: they are per portal)
POST  user-edit                act as a HubSpot user (changeSource CRM_UI, sourceId userId:N); emits webhooks:
                               {"portal_id", "object_type", "action": create|update|delete|restore|merge|associate|
                               dissociate, "id"?, "properties"?, "user_id"? (default 1), "merge_id"?,
                               "to_object_type"?, "to_id"?, "association_type_id"?} -> the record, as the API shows it
POST  seed                     {"portal_id"? (default: a new portal), "companies"?, "contacts_per_company"?,
                               "lone_contacts"?, "products"?, "invoices"?, "seed"?} -> 201 {"portal_id", counts}
                               (no webhooks: the data is there before the app is installed)
POST  tokens                   {"portal_id", "kind"?: "oauth" (default) | "private", "token"? (private),
                               "scopes"?: [names] (default: hsqbo's requested set; fewer to test MISSING_SCOPES)}
                               -> 201 {"access_token", "portal_id", "scopes"} plus, for OAuth, "refresh_token",
                               "expires_in"
GET   app/webhooks             {"subscriptions": [...]}: the app's webhook subscriptions, as the webhooks API shows them
PUT   app/webhooks             a `webhooks-hsmeta.json` document: replaces the app's webhook subscriptions with
                               those it declares, as `hs project upload` does -> {"subscriptions": [...]}
DELETE app/webhooks/{id}       deletes one subscription (as in HubSpot's app settings) -> {"deleted": id}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hsqbo_sandbox._control import Json, answer, control_routes, read_object, required
from hsqbo_sandbox.hubspot._auth import DEFAULT_SCOPES
from hsqbo_sandbox.hubspot._errors import HubSpotError

if TYPE_CHECKING:
    from hsqbo_sandbox.hubspot import HubSpotSandbox


def _hubspot_error(exc: Exception) -> tuple[int, Json] | None:
    return (exc.status, exc.body()) if isinstance(exc, HubSpotError) else None


class ControlApi:
    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        own = {
            ("GET", "accounts"): self.list_accounts,
            ("POST", "accounts"): self.create_account,
            ("PATCH", "accounts/{portal_id:int}"): self.configure_account,
            ("POST", "user-edit"): self.user_edit,
            ("POST", "seed"): self.seed,
            ("POST", "tokens"): self.issue_token,
            ("GET", "app/webhooks"): self.list_subscriptions,
            ("PUT", "app/webhooks"): self.upload_webhooks,
            ("DELETE", "app/webhooks/{subscription_id:int}"): self.delete_subscription,
        }
        return control_routes(self.sandbox, own, provider_error=_hubspot_error)

    async def list_accounts(self, request: Request) -> Response:
        return answer({"accounts": [account.settings() for account in self.sandbox.accounts]})

    async def create_account(self, request: Request) -> Response:
        settings = await read_object(request)
        portal_id = self.sandbox.create_portal(settings.pop("portal_id", None), **settings)
        return answer(self.sandbox.accounts.get(portal_id).settings(), 201)

    async def configure_account(self, request: Request) -> Response:
        account = self.sandbox.accounts.get(request.path_params["portal_id"])
        account.configure(**await read_object(request))
        return answer(account.settings())

    async def user_edit(self, request: Request) -> Response:
        return answer(self.sandbox.user_edit(**await read_object(request, exact=True)))

    async def seed(self, request: Request) -> Response:
        counts = await read_object(request)
        portal_id = counts.pop("portal_id", None)
        return answer(self.sandbox.seed(int(portal_id) if portal_id is not None else None, **counts), 201)

    async def issue_token(self, request: Request) -> Response:
        body = await read_object(request)
        portal_id = int(required(body, "portal_id"))
        kind = body.get("kind", "oauth")
        scopes = body.get("scopes")
        if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)):
            raise ValueError("scopes must be a list of scope names")
        granted = scopes if scopes is not None else DEFAULT_SCOPES.split()
        if kind == "private":
            token = self.sandbox.private_app_token(portal_id, body.get("token"), scopes=scopes)
            return answer({"access_token": token, "portal_id": portal_id, "scopes": granted}, 201)
        if kind != "oauth":
            raise ValueError(f"kind must be oauth or private, not {kind!r}")
        pair = self.sandbox.issue_token(portal_id, scopes=scopes)
        return answer({"access_token": pair.access_token, "refresh_token": pair.refresh_token,
                       "expires_in": pair.expires_in, "portal_id": portal_id, "scopes": granted}, 201)  # fmt: skip

    async def list_subscriptions(self, request: Request) -> Response:
        return answer({"subscriptions": [subscription.to_json() for subscription in self.sandbox.subscriptions]})

    async def upload_webhooks(self, request: Request) -> Response:
        uploaded = self.sandbox.subscriptions.upload(await read_object(request))
        return answer({"subscriptions": [subscription.to_json() for subscription in uploaded]})

    async def delete_subscription(self, request: Request) -> Response:
        subscription_id = request.path_params["subscription_id"]
        if not self.sandbox.subscriptions.delete(subscription_id):
            raise KeyError(f"subscription {subscription_id}")
        return answer({"deleted": subscription_id})
