"""The sandbox's own settings: the OAuth apps and the webhook verifier token the emulators know, as the providers'
developer portals would hold them. Read from `HSQBO_SANDBOX_*` environment variables (secrets never go on a command
line; the rest of the sandbox's options are its command line's), with defaults for a local run.

The sandbox reads none of hsqbo's settings: whoever runs both (`hsqbo run`, the tests, Compose's sandbox profile)
gives each the same values, as an operator copies an app's secret from HubSpot's developer portal into hsqbo's.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

ENV_PREFIX = "HSQBO_SANDBOX_"

DEFAULT_HUBSPOT_CLIENT_ID = "hsqbo-sandbox-client"
DEFAULT_HUBSPOT_CLIENT_SECRET = "hsqbo-sandbox-secret"
DEFAULT_HUBSPOT_APP_ID = "424242"
DEFAULT_DEVELOPER_API_KEY = "hsqbo-sandbox-developer-key"
DEFAULT_QBO_CLIENT_ID = "hsqbo-sandbox-qbo-client"
DEFAULT_QBO_CLIENT_SECRET = "hsqbo-sandbox-qbo-secret"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SandboxApps:
    """The apps registered with the emulators. `intuit_verifier_token` None: Intuit webhooks are sent unsigned."""

    hubspot_client_id: str = DEFAULT_HUBSPOT_CLIENT_ID
    hubspot_client_secret: str = dataclasses.field(default=DEFAULT_HUBSPOT_CLIENT_SECRET, repr=False)
    hubspot_app_id: str = DEFAULT_HUBSPOT_APP_ID
    hubspot_developer_api_key: str = dataclasses.field(default=DEFAULT_DEVELOPER_API_KEY, repr=False)
    qbo_client_id: str = DEFAULT_QBO_CLIENT_ID
    qbo_client_secret: str = dataclasses.field(default=DEFAULT_QBO_CLIENT_SECRET, repr=False)
    intuit_verifier_token: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxApps:
        """`HSQBO_SANDBOX_<FIELD>` (`HSQBO_SANDBOX_HUBSPOT_CLIENT_SECRET`...) for each field set and not empty."""
        environ = os.environ if environ is None else environ
        given = {field.name: environ.get(ENV_PREFIX + field.name.upper()) for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in given.items() if value})


def log_level(environ: Mapping[str, str] | None = None) -> str:
    """`HSQBO_SANDBOX_LOG_LEVEL`, INFO by default."""
    return (os.environ if environ is None else environ).get(ENV_PREFIX + "LOG_LEVEL") or "INFO"
