-- Client-side API rate limits shared by every process (shared/clients/_limits.py), and cross-process leases.

-- One row per admitted call and window it counts against. It counts until `until`: while the call is in flight,
-- the lease end + `seconds`; once it ended, its end + `seconds` (the provider counted it somewhere in between).
CREATE TABLE rate_uses (
    key TEXT NOT NULL,
    ticket BIGINT NOT NULL,
    until DOUBLE PRECISION NOT NULL,
    seconds DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (key, ticket)
);
CREATE INDEX rate_uses_by_until ON rate_uses (key, until);
CREATE INDEX rate_uses_by_ticket ON rate_uses (ticket);

-- Calls in flight per account, leased: a dead process's slots come back at lease_until.
CREATE TABLE rate_in_flight (
    ticket BIGINT PRIMARY KEY,
    key TEXT NOT NULL,
    lease_until DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_in_flight_by_key ON rate_in_flight (key, lease_until);

-- Provider-advised pauses (429, Retry-After): no call on `key` before `until`.
CREATE TABLE rate_pauses (
    key TEXT PRIMARY KEY,
    until DOUBLE PRECISION NOT NULL
);

-- Named leases across processes (e.g. one OAuth refresh in flight per connection and provider).
CREATE TABLE locks (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
