-- rigwatch storage, valid on ClickHouse 18.16 and current releases.
-- {db} is replaced by the configured database name (a checked identifier).
-- Every table keeps every delivered version: ReplacingMergeTree(version)
-- collapses redeliveries of the same key, and queries read the latest version
-- with FINAL or argMax so nothing counts twice before a merge.
--
-- Cluster mode (--clickhouse-cluster) runs every statement in its cluster
-- form (schemas/ddl_cluster.go): each table becomes a Replicated*MergeTree
-- <name>_local on every server and a Distributed table <name> over them,
-- created ON CLUSTER. The "-- cluster: sharding key EXPR" line before each
-- CREATE TABLE picks the shard of a row; for an engine that collapses rows
-- by key it may use only ORDER BY columns, so every version of a key lives
-- on one shard and FINAL stays exact. A new table needs that line.

-- cluster: sharding key cityHash64(license_id)
CREATE TABLE IF NOT EXISTS {db}.licenses (
    license_id String,
    operator_id String,
    operator_name String,
    status String,
    valid_from DateTime,
    valid_to DateTime,
    licensed_capacity_kw Nullable(Float64),
    updated_at DateTime,
    deleted UInt8,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (license_id, updated_at);

-- cluster: sharding key cityHash64(rig_id)
CREATE TABLE IF NOT EXISTS {db}.rigs (
    rig_id String,
    serial String,
    model String,
    rated_power_w Float64,
    hashrate_ths Nullable(Float64),
    operator_id String,
    license_id String,
    site_id String,
    status String,
    updated_at DateTime,
    deleted UInt8,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (rig_id, updated_at);

-- cluster: sharding key cityHash64(meter_id)
CREATE TABLE IF NOT EXISTS {db}.meters (
    meter_id String,
    feeder_id String,
    role String,
    class String,
    site_id String,
    oblast String,
    updated_at DateTime,
    deleted UInt8,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (meter_id, updated_at);

-- cluster: sharding key cityHash64(meter_id)
CREATE TABLE IF NOT EXISTS {db}.readings (
    meter_id String,
    ts DateTime,
    kwh Float64,
    interval_s UInt32,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (meter_id, ts);

-- cluster: sharding key cityHash64(tx_id)
CREATE TABLE IF NOT EXISTS {db}.purchases (
    tx_id String,
    operator_id String,
    site_id String,
    mwh Float64,
    price_kzt_per_mwh Nullable(Float64),
    ts DateTime,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY tx_id;

-- cluster: sharding key cityHash64(source, partition, offset, line)
CREATE TABLE IF NOT EXISTS {db}.rejects (
    stream String,
    source String,
    partition Int32,
    offset Int64,
    line Int64,
    field String,
    rule String,
    reason String,
    raw String,
    raw_size Int64,
    raw_sha256 String,
    received_at DateTime
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(received_at)
ORDER BY (source, partition, offset, line);

-- cluster: sharding key cityHash64(alert_id)
CREATE TABLE IF NOT EXISTS {db}.alerts (
    alert_id String,
    kind String,
    severity String,
    entity_type String,
    entity_id String,
    meter_id String,
    feeder_id String,
    site_id String,
    operator_id String,
    rig_id String,
    license_id String,
    tx_id String,
    oblast String,
    window_start DateTime,
    window_end DateTime,
    detected_at DateTime,
    observed_kwh Nullable(Float64),
    expected_kwh Nullable(Float64),
    excess_kwh Nullable(Float64),
    estimated_value_kzt Nullable(Float64),
    score Float64,
    summary String,
    evidence String,
    status String,
    note String,
    created_at DateTime,
    updated_at DateTime,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY alert_id;
