-- The detector's judgement of each feeder's normal technical losses, per
-- local day: the feeder ranking and the feeder page measure energy beyond
-- normal losses with the detector's own model. Valid on ClickHouse 18.16
-- and current releases. A re-evaluation of a day replaces its row.
-- cluster: sharding key cityHash64(feeder_id)
CREATE TABLE IF NOT EXISTS {db}.loss_models (
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
) ENGINE = ReplacingMergeTree(version)
ORDER BY (feeder_id, day);
