-- Provider API calls per account (QBO realm id, HubSpot portal id), provider, kind (read / write) and calendar month
-- (UTC, "2026-12"), added by every process that calls (shared/clients/_usage.py): the QBO read budget, the status
-- page. One SQL text for both stores.
CREATE TABLE api_usage (
    provider TEXT NOT NULL,
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    month TEXT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (provider, account, kind, month)
);
