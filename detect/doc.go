// Package detect is rigwatch's detection engine: the statistics and the rules
// that turn stored readings, purchases and the registry into alerts of every
// kind of the contract.
//
// The Engine is evaluated Prometheus-style over event time: each call to
// Evaluate(from, to) runs the rules at every hour boundary t in (from, to],
// and each evaluation at t uses only data from before t, looking back over
// Config.Lookback. A finding opens an episode at the first evaluation that
// holds it (DetectedAt), its window starts at the estimated onset (a
// change-point walked back from the detection) and it is updated, keeping its
// alert_id, while it continues. Because every evaluation depends only on the
// data before its own instant, one call over a replayed period and a series
// of calls stepping through it live give the same alerts; the Engine carries
// open episodes from one call to the next when the next call starts where the
// previous one ended.
//
// detect reads data only through its own small interfaces, Series and
// Registry; MemSeries is an in-memory Series.
package detect
