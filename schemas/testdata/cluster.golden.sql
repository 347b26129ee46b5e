-- The cluster form of schemas/ddl/ (database rigwatch, cluster rigwatch,
-- path suffix SUFFIX). Generated: go test ./schemas -run Golden -update

-- 0001_tables
CREATE TABLE IF NOT EXISTS rigwatch.licenses_local ON CLUSTER rigwatch (
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
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/licenses_SUFFIX', '{replica}', version)
ORDER BY (license_id, updated_at);
CREATE TABLE IF NOT EXISTS rigwatch.licenses ON CLUSTER rigwatch AS rigwatch.licenses_local ENGINE = Distributed(rigwatch, rigwatch, licenses_local, cityHash64(license_id));
CREATE TABLE IF NOT EXISTS rigwatch.rigs_local ON CLUSTER rigwatch (
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
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/rigs_SUFFIX', '{replica}', version)
ORDER BY (rig_id, updated_at);
CREATE TABLE IF NOT EXISTS rigwatch.rigs ON CLUSTER rigwatch AS rigwatch.rigs_local ENGINE = Distributed(rigwatch, rigwatch, rigs_local, cityHash64(rig_id));
CREATE TABLE IF NOT EXISTS rigwatch.meters_local ON CLUSTER rigwatch (
    meter_id String,
    feeder_id String,
    role String,
    class String,
    site_id String,
    oblast String,
    updated_at DateTime,
    deleted UInt8,
    version UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/meters_SUFFIX', '{replica}', version)
ORDER BY (meter_id, updated_at);
CREATE TABLE IF NOT EXISTS rigwatch.meters ON CLUSTER rigwatch AS rigwatch.meters_local ENGINE = Distributed(rigwatch, rigwatch, meters_local, cityHash64(meter_id));
CREATE TABLE IF NOT EXISTS rigwatch.readings_local ON CLUSTER rigwatch (
    meter_id String,
    ts DateTime,
    kwh Float64,
    interval_s UInt32,
    version UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/readings_SUFFIX', '{replica}', version)
PARTITION BY toYYYYMM(ts)
ORDER BY (meter_id, ts);
CREATE TABLE IF NOT EXISTS rigwatch.readings ON CLUSTER rigwatch AS rigwatch.readings_local ENGINE = Distributed(rigwatch, rigwatch, readings_local, cityHash64(meter_id));
CREATE TABLE IF NOT EXISTS rigwatch.purchases_local ON CLUSTER rigwatch (
    tx_id String,
    operator_id String,
    site_id String,
    mwh Float64,
    price_kzt_per_mwh Nullable(Float64),
    ts DateTime,
    version UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/purchases_SUFFIX', '{replica}', version)
ORDER BY tx_id;
CREATE TABLE IF NOT EXISTS rigwatch.purchases ON CLUSTER rigwatch AS rigwatch.purchases_local ENGINE = Distributed(rigwatch, rigwatch, purchases_local, cityHash64(tx_id));
CREATE TABLE IF NOT EXISTS rigwatch.rejects_local ON CLUSTER rigwatch (
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
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/rejects_SUFFIX', '{replica}', received_at)
PARTITION BY toYYYYMM(received_at)
ORDER BY (source, partition, offset, line);
CREATE TABLE IF NOT EXISTS rigwatch.rejects ON CLUSTER rigwatch AS rigwatch.rejects_local ENGINE = Distributed(rigwatch, rigwatch, rejects_local, cityHash64(source, partition, offset, line));
CREATE TABLE IF NOT EXISTS rigwatch.alerts_local ON CLUSTER rigwatch (
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
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/alerts_SUFFIX', '{replica}', version)
ORDER BY alert_id;
CREATE TABLE IF NOT EXISTS rigwatch.alerts ON CLUSTER rigwatch AS rigwatch.alerts_local ENGINE = Distributed(rigwatch, rigwatch, alerts_local, cityHash64(alert_id));

-- 0002_api
CREATE TABLE IF NOT EXISTS rigwatch.api_tokens_local ON CLUSTER rigwatch (
    name String,
    token_sha256 String,
    role String,
    created_at DateTime,
    revoked UInt8,
    revoked_at DateTime,
    version UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/api_tokens_SUFFIX', '{replica}', version)
ORDER BY name;
CREATE TABLE IF NOT EXISTS rigwatch.api_tokens ON CLUSTER rigwatch AS rigwatch.api_tokens_local ENGINE = Distributed(rigwatch, rigwatch, api_tokens_local, cityHash64(name));
CREATE TABLE IF NOT EXISTS rigwatch.audit_local ON CLUSTER rigwatch (
    ts DateTime,
    seq UInt64,
    who String,
    role String,
    action String,
    params String,
    remote_addr String,
    status UInt16
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/rigwatch/audit_SUFFIX', '{replica}')
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, seq);
CREATE TABLE IF NOT EXISTS rigwatch.audit ON CLUSTER rigwatch AS rigwatch.audit_local ENGINE = Distributed(rigwatch, rigwatch, audit_local, cityHash64(seq));
CREATE TABLE IF NOT EXISTS rigwatch.alert_events_local ON CLUSTER rigwatch (
    alert_id String,
    ts DateTime,
    seq UInt64,
    who String,
    from_status String,
    to_status String,
    note String
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/rigwatch/alert_events_SUFFIX', '{replica}')
ORDER BY (alert_id, ts, seq);
CREATE TABLE IF NOT EXISTS rigwatch.alert_events ON CLUSTER rigwatch AS rigwatch.alert_events_local ENGINE = Distributed(rigwatch, rigwatch, alert_events_local, cityHash64(alert_id));

-- 0003_models
CREATE TABLE IF NOT EXISTS rigwatch.loss_models_local ON CLUSTER rigwatch (
    feeder_id String,
    day DateTime,
    c_kwh Float64,
    a Float64,
    b_per_kwh Float64,
    share Float64,
    fitted_share Float64,
    allowance Float64,
    source String,
    sigma_kwh Float64,
    hours UInt32,
    typical_kwh Float64,
    version UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/loss_models_SUFFIX', '{replica}', version)
ORDER BY (feeder_id, day);
CREATE TABLE IF NOT EXISTS rigwatch.loss_models ON CLUSTER rigwatch AS rigwatch.loss_models_local ENGINE = Distributed(rigwatch, rigwatch, loss_models_local, cityHash64(feeder_id));

-- 0004_alert_state
ALTER TABLE rigwatch.alerts_local ON CLUSTER rigwatch ADD COLUMN closed UInt8 DEFAULT 0;
DROP TABLE IF EXISTS rigwatch.alerts ON CLUSTER rigwatch;
CREATE TABLE rigwatch.alerts ON CLUSTER rigwatch AS rigwatch.alerts_local ENGINE = Distributed(rigwatch, rigwatch, alerts_local, cityHash64(alert_id));

-- 0005_live
CREATE TABLE IF NOT EXISTS rigwatch.detect_state_local ON CLUSTER rigwatch (
    name String,
    event_time DateTime,
    state String,
    version UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/detect_state_SUFFIX', '{replica}', version)
ORDER BY name;
CREATE TABLE IF NOT EXISTS rigwatch.detect_state ON CLUSTER rigwatch AS rigwatch.detect_state_local ENGINE = Distributed(rigwatch, rigwatch, detect_state_local, cityHash64(name));
CREATE TABLE IF NOT EXISTS rigwatch.reading_marks_local ON CLUSTER rigwatch (
    meter_id String,
    ts DateTime,
    interval_s UInt32,
    noted DateTime
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/rigwatch/reading_marks_SUFFIX', '{replica}')
PARTITION BY toYYYYMMDD(noted)
ORDER BY (noted, meter_id);
CREATE TABLE IF NOT EXISTS rigwatch.reading_marks ON CLUSTER rigwatch AS rigwatch.reading_marks_local ENGINE = Distributed(rigwatch, rigwatch, reading_marks_local, cityHash64(meter_id));

-- 0006_hours
CREATE TABLE IF NOT EXISTS rigwatch.feeder_hours_local ON CLUSTER rigwatch (
    feeder_id String,
    hour DateTime,
    head_kwh Float64,
    meters_kwh Float64,
    meters UInt32,
    complete UInt8,
    version UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/feeder_hours_SUFFIX', '{replica}', version)
PARTITION BY toYYYYMM(hour)
ORDER BY (feeder_id, hour);
CREATE TABLE IF NOT EXISTS rigwatch.feeder_hours ON CLUSTER rigwatch AS rigwatch.feeder_hours_local ENGINE = Distributed(rigwatch, rigwatch, feeder_hours_local, cityHash64(feeder_id));
CREATE TABLE IF NOT EXISTS rigwatch.site_hours_local ON CLUSTER rigwatch (
    site_id String,
    meter_id String,
    hour DateTime,
    kwh Float64,
    covered_s UInt32,
    capacity_kw Float64,
    version UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/rigwatch/site_hours_SUFFIX', '{replica}', version)
PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, meter_id, hour);
CREATE TABLE IF NOT EXISTS rigwatch.site_hours ON CLUSTER rigwatch AS rigwatch.site_hours_local ENGINE = Distributed(rigwatch, rigwatch, site_hours_local, cityHash64(site_id));
