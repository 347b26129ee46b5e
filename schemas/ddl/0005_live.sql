-- Live detection's state, so that a process taking over detection
-- continues where the last one stopped: the engine's snapshot after each
-- evaluation (name 'engine'), and its horizon (name 'horizon'), written
-- before each read: ingest marks the readings it stores at or before the
-- horizon it finds. Valid on ClickHouse 18.16 and current releases.
-- cluster: sharding key cityHash64(name)
CREATE TABLE IF NOT EXISTS {db}.detect_state (
    name String,
    event_time DateTime,
    state String,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY name;

-- Readings stored behind live detection (late, or corrected after it read
-- them), named by ingest for the detector to read their hours again.
-- cluster: sharding key cityHash64(meter_id)
CREATE TABLE IF NOT EXISTS {db}.reading_marks (
    meter_id String,
    ts DateTime,
    interval_s UInt32,
    noted DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(noted)
ORDER BY (noted, meter_id);
