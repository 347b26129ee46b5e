// Package schemas holds the rigwatch data contract: the record types that flow
// in and out, their decoders and validation, the JSON Schemas and the
// ClickHouse DDL. It does no I/O.
package schemas

import "time"

// Stream names one input of the contract. Its string is also the ClickHouse
// table name and the suffix of the default topic.
type Stream string

// The input streams of the contract.
const (
	Licenses  Stream = "licenses"
	Rigs      Stream = "rigs"
	Meters    Stream = "meters"
	Readings  Stream = "readings"
	Purchases Stream = "purchases"
)

// Streams lists the input streams in load order: registry first, so that a
// replay stores the registry before the readings judged against it.
var Streams = []Stream{Licenses, Meters, Rigs, Purchases, Readings}

// Output topics and tables.
const (
	AlertsTopic  = "rigwatch.alerts"
	RejectsTopic = "rigwatch.rejects"
)

// Topic returns the stream's default Kafka topic.
func (s Stream) Topic() string { return "rigwatch." + string(s) }

// Registry reports whether the stream is a keyed registry stream, on which a
// null value (tombstone) deletes its key.
func (s Stream) Registry() bool { return s == Licenses || s == Rigs || s == Meters }

// KeyField returns the name of the field that keys the stream's messages.
func (s Stream) KeyField() string {
	switch s {
	case Licenses:
		return "license_id"
	case Rigs:
		return "rig_id"
	case Meters, Readings:
		return "meter_id"
	case Purchases:
		return "tx_id"
	}
	return ""
}

// ParseStream returns the stream with the given name.
func ParseStream(name string) (Stream, bool) {
	for _, s := range Streams {
		if string(s) == name {
			return s, true
		}
	}
	return "", false
}

// Meta is what ingest attaches to every stored record: a version that orders
// deliveries of the same key (a later delivery replaces an earlier one) and,
// on registry streams, a deletion mark left by a tombstone.
type Meta struct {
	Version uint64 `json:"-"`
	Deleted bool   `json:"-"`
}

// Licence statuses.
const (
	LicenseActive    = "active"
	LicenseSuspended = "suspended"
	LicenseRevoked   = "revoked"
	LicenseExpired   = "expired"
)

// License is a mining licence issued by the Ministry of Energy.
type License struct {
	LicenseID          string    `json:"license_id"`
	OperatorID         string    `json:"operator_id"`
	OperatorName       string    `json:"operator_name,omitempty"`
	Status             string    `json:"status"`
	ValidFrom          time.Time `json:"valid_from"`
	ValidTo            time.Time `json:"valid_to"`
	LicensedCapacityKW *float64  `json:"licensed_capacity_kw,omitempty"`
	UpdatedAt          time.Time `json:"updated_at"`
	Meta
}

// Rig statuses.
const (
	RigActive         = "active"
	RigSuspended      = "suspended"
	RigDecommissioned = "decommissioned"
)

// Rig is one registered mining machine.
type Rig struct {
	RigID       string    `json:"rig_id"`
	Serial      string    `json:"serial"`
	Model       string    `json:"model,omitempty"`
	RatedPowerW float64   `json:"rated_power_w"`
	HashrateTHs *float64  `json:"hashrate_ths,omitempty"`
	OperatorID  string    `json:"operator_id"`
	LicenseID   string    `json:"license_id"`
	SiteID      string    `json:"site_id"`
	Status      string    `json:"status"`
	UpdatedAt   time.Time `json:"updated_at"`
	Meta
}

// Meter roles.
const (
	RoleFeederHead = "feeder_head"
	RoleSite       = "site"
	RoleCustomer   = "customer"
)

// Meter classes.
const (
	ClassResidential = "residential"
	ClassSocial      = "social"
	ClassCommercial  = "commercial"
	ClassIndustrial  = "industrial"
	ClassMining      = "mining"
)

// Meter is a point of the grid topology: which feeder a meter hangs on and
// what it measures.
type Meter struct {
	MeterID   string    `json:"meter_id"`
	FeederID  string    `json:"feeder_id"`
	Role      string    `json:"role"`
	Class     string    `json:"class"`
	SiteID    string    `json:"site_id,omitempty"`
	Oblast    string    `json:"oblast,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	Meta
}

// DefaultIntervalS is the metering interval assumed when a reading has none.
const DefaultIntervalS = 900

// Reading is the energy one meter measured over the interval ending at TS.
// (MeterID, TS) identifies it; a later delivery of the same key replaces it.
type Reading struct {
	MeterID   string    `json:"meter_id"`
	TS        time.Time `json:"ts"`
	KWh       float64   `json:"kwh"`
	IntervalS int32     `json:"interval_s"`
	Meta
}

// Purchase is electricity an operator bought on the state marketplace.
type Purchase struct {
	TxID           string    `json:"tx_id"`
	OperatorID     string    `json:"operator_id"`
	SiteID         string    `json:"site_id,omitempty"`
	MWh            float64   `json:"mwh"`
	PriceKZTPerMWh *float64  `json:"price_kzt_per_mwh,omitempty"`
	TS             time.Time `json:"ts"`
	Meta
}

// MaxPurchaseMWh is the largest marketplace transaction the rules allow.
const MaxPurchaseMWh = 1.0

// Alert kinds.
const (
	KindOverCapacity      = "over_capacity"
	KindUnregisteredLoad  = "unregistered_load"
	KindFeederImbalance   = "feeder_imbalance"
	KindPurchaseShortfall = "purchase_shortfall"
	KindOversizedPurchase = "oversized_purchase"
	KindRegistryViolation = "registry_violation"
	// KindTopologyChange is not theft: two feeders' head meters disagree
	// with their registered meters by mirrored amounts, as when a block of
	// customers is served from a neighbouring feeder (switching for
	// maintenance or an outage) and no meter record says so.
	KindTopologyChange = "topology_change"
	// KindDataQuality is not theft: readings that cannot be a real load,
	// such as a meter stuck at one value.
	KindDataQuality = "data_quality"
)

// AlertKinds lists every alert kind.
var AlertKinds = []string{KindOverCapacity, KindUnregisteredLoad, KindFeederImbalance,
	KindPurchaseShortfall, KindOversizedPurchase, KindRegistryViolation, KindTopologyChange, KindDataQuality}

// SuspectMeter is one entry of a feeder_imbalance alert's
// evidence.suspect_meters: a meter of the feeder ranked by how much of the
// missing energy it most likely hides.
type SuspectMeter struct {
	MeterID string  `json:"meter_id"`
	Score   float64 `json:"score"`
	EstKWh  float64 `json:"est_kwh"`
}

// LossModel is a feeder's normal technical losses as the detector judged
// them for one local day (table loss_models): the feeder ranking and the
// feeder page measure energy beyond normal losses with the detector's own
// model.
type LossModel struct {
	FeederID string    `json:"feeder_id"`
	Day      time.Time `json:"day"` // start of the local day it was judged for
	// C, A and B give the normal loss in an hour whose meters metered M
	// kWh: C + A*M + B*M^2 kWh.
	C float64 `json:"c_kwh"`
	A float64 `json:"a"`
	B float64 `json:"b_per_kwh"`
	// Share is the normal loss over the fit window as a share of the
	// metered energy; FitShare what the feeder's own history gave; Allow
	// how far above Share a feeder judged against its peers or band may go
	// before it counts; Source "own_fit", "peers", "band" (the detector's)
	// or "page_fit" (fitted for a page without a stored model).
	Share    float64 `json:"share"`
	FitShare float64 `json:"fitted_share"`
	Allow    float64 `json:"allowance"`
	Source   string  `json:"source"`
	// Sigma is the spread of an honest hour's residual (kWh); Hours the
	// complete hours fitted; TypicalKWh the median metered kWh an hour.
	Sigma      float64 `json:"sigma_kwh"`
	Hours      int     `json:"hours"`
	TypicalKWh float64 `json:"typical_kwh"`
}

// FeederHour is one clock hour of a feeder's balance as the detector
// derived it from the latest version of every reading (table
// feeder_hours): what its head meter measured, what its other meters
// measured together, how many there were and whether every one of them
// (and the head) reported the whole hour. Rewritten whenever a late or
// corrected reading changes it, so the investigator pages show the figures
// the detector judged.
type FeederHour struct {
	FeederID  string    `json:"feeder_id"`
	Hour      time.Time `json:"hour"` // its start
	HeadKWh   float64   `json:"head_kwh"`
	MetersKWh float64   `json:"meters_kwh"`
	Meters    int       `json:"meters"`
	Complete  bool      `json:"complete"`
}

// SiteHour is one clock hour of a site meter as the detector derived it
// (table site_hours): the energy metered, the seconds of the hour its
// readings cover and the registered capacity of the site's active rigs.
type SiteHour struct {
	SiteID     string    `json:"site_id"`
	MeterID    string    `json:"meter_id"`
	Hour       time.Time `json:"hour"`
	KWh        float64   `json:"kwh"`
	CoveredS   int       `json:"covered_s"`
	CapacityKW float64   `json:"capacity_kw"`
}

// Loss returns the normal loss in an hour whose meters metered m kWh.
func (l LossModel) Loss(m float64) float64 { return l.C + l.A*m + l.B*m*m }

// Alert severities.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Alert statuses.
const (
	StatusOpen         = "open"
	StatusAcknowledged = "acknowledged"
	StatusResolved     = "resolved"
)

// Alert entity types.
const (
	EntityMeter    = "meter"
	EntityFeeder   = "feeder"
	EntityOperator = "operator"
	EntityRig      = "rig"
	EntityLicense  = "license"
	EntityPurchase = "purchase"
	EntitySite     = "site"
)

// Alert is one finding of the detector.
type Alert struct {
	AlertID           string         `json:"alert_id"`
	Kind              string         `json:"kind"`
	Severity          string         `json:"severity"`
	EntityType        string         `json:"entity_type"`
	EntityID          string         `json:"entity_id"`
	MeterID           string         `json:"meter_id,omitempty"`
	FeederID          string         `json:"feeder_id,omitempty"`
	SiteID            string         `json:"site_id,omitempty"`
	OperatorID        string         `json:"operator_id,omitempty"`
	RigID             string         `json:"rig_id,omitempty"`
	LicenseID         string         `json:"license_id,omitempty"`
	TxID              string         `json:"tx_id,omitempty"`
	Oblast            string         `json:"oblast,omitempty"`
	WindowStart       time.Time      `json:"window_start"`
	WindowEnd         time.Time      `json:"window_end"`
	DetectedAt        time.Time      `json:"detected_at"` // event time at which the finding first held
	ObservedKWh       *float64       `json:"observed_kwh,omitempty"`
	ExpectedKWh       *float64       `json:"expected_kwh,omitempty"`
	ExcessKWh         *float64       `json:"excess_kwh,omitempty"`
	EstimatedValueKZT *float64       `json:"estimated_value_kzt,omitempty"`
	Score             float64        `json:"score"`
	Summary           string         `json:"summary"`
	Evidence          map[string]any `json:"evidence"`
	Status            string         `json:"status"`
	Note              string         `json:"note,omitempty"`
	// Closed is set once the detector has closed the finding: it no longer
	// holds. Status stays what people made it.
	Closed    bool      `json:"closed,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Reject is an input that could not be accepted, with where it came from and
// why. Raw holds the original bytes (cut at RawLimit; RawSize and RawSHA256
// describe the whole input).
type Reject struct {
	Stream     Stream    `json:"stream"`
	Source     string    `json:"source"` // topic or file
	Partition  int32     `json:"partition"`
	Offset     int64     `json:"offset"` // Kafka offset, or -1 for files
	Line       int64     `json:"line"`   // file line, or -1 for Kafka
	Field      string    `json:"field,omitempty"`
	Rule       string    `json:"rule"` // short class of the reason, e.g. "missing", "range"
	Reason     string    `json:"reason"`
	Raw        []byte    `json:"raw"`
	RawSize    int64     `json:"raw_size"`
	RawSHA256  string    `json:"raw_sha256"`
	ReceivedAt time.Time `json:"received_at"`
}

// Batch holds decoded records of any streams and the rejects met while
// decoding them, ready to be written together.
type Batch struct {
	Licenses  []License
	Rigs      []Rig
	Meters    []Meter
	Readings  []Reading
	Purchases []Purchase
	Rejects   []Reject
}

// Len returns the number of records and rejects in the batch.
func (b *Batch) Len() int {
	return len(b.Licenses) + len(b.Rigs) + len(b.Meters) + len(b.Readings) + len(b.Purchases) + len(b.Rejects)
}

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	b.Licenses, b.Rigs, b.Meters = b.Licenses[:0], b.Rigs[:0], b.Meters[:0]
	b.Readings, b.Purchases, b.Rejects = b.Readings[:0], b.Purchases[:0], b.Rejects[:0]
}

// Count returns how many accepted records of stream s the batch holds.
func (b *Batch) Count(s Stream) int {
	switch s {
	case Licenses:
		return len(b.Licenses)
	case Rigs:
		return len(b.Rigs)
	case Meters:
		return len(b.Meters)
	case Readings:
		return len(b.Readings)
	case Purchases:
		return len(b.Purchases)
	}
	return 0
}
