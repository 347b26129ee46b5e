-- rigwatch HTTP API: access tokens, the audit trail, the history of alert
-- status changes. Valid on ClickHouse 18.16 and current releases.

-- An API token: only the SHA-256 of the token is stored, never the token.
-- The latest version of a name wins (revocation inserts a new version).
-- cluster: sharding key cityHash64(name)
CREATE TABLE IF NOT EXISTS {db}.api_tokens (
    name String,
    token_sha256 String,
    role String,
    created_at DateTime,
    revoked UInt8,
    revoked_at DateTime,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY name;

-- Who did what, when, with which parameters: every investigator query,
-- evidence export, alert status change and admin action. Append-only.
-- cluster: sharding key cityHash64(seq)
CREATE TABLE IF NOT EXISTS {db}.audit (
    ts DateTime,
    seq UInt64,
    who String,
    role String,
    action String,
    params String,
    remote_addr String,
    status UInt16
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, seq);

-- Every status change of an alert: the alerts table holds the current state,
-- this table how it got there.
-- cluster: sharding key cityHash64(alert_id)
CREATE TABLE IF NOT EXISTS {db}.alert_events (
    alert_id String,
    ts DateTime,
    seq UInt64,
    who String,
    from_status String,
    to_status String,
    note String
) ENGINE = MergeTree
ORDER BY (alert_id, ts, seq);
