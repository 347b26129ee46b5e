package sim

import "time"

// Truth is one hidden incident of a scenario: what a perfect detector would
// report. EntityType and EntityID follow the contract for the kind; Related
// lists other ids an alert may name and still be about this incident (the
// licence of a rig, the other rig of a duplicated serial, the site of a
// site meter, ...).
type Truth struct {
	Kind       string    `json:"kind"`
	EntityType string    `json:"entity_type"`
	EntityID   string    `json:"entity_id"`
	MeterID    string    `json:"meter_id,omitempty"`
	FeederID   string    `json:"feeder_id,omitempty"`
	SiteID     string    `json:"site_id,omitempty"`
	OperatorID string    `json:"operator_id,omitempty"`
	RigID      string    `json:"rig_id,omitempty"`
	LicenseID  string    `json:"license_id,omitempty"`
	TxID       string    `json:"tx_id,omitempty"`
	Oblast     string    `json:"oblast,omitempty"`
	Related    []string  `json:"related_ids,omitempty"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	// ExcessKWh is the true excess energy over the whole scenario, where energy
	// applies: drawn by hidden rigs (over_capacity), by unregistered mining
	// (unregistered_load), taken before the meters including the extra
	// technical losses it causes (feeder_imbalance), or consumed but not
	// bought (purchase_shortfall).
	ExcessKWh *float64 `json:"excess_kwh,omitempty"`
	Pattern   string   `json:"pattern,omitempty"`
	// AtStart says the incident is under way when the data starts: the
	// data shows no onset.
	AtStart bool `json:"at_start,omitempty"`
	// Suspects are the meters that under-report, for a feeder_imbalance of
	// false data injection: the doors an investigator should knock on.
	Suspects []string `json:"suspect_meters,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// ids returns every entity id an alert may name to match t.
func (t *Truth) ids() []string {
	return append([]string{t.EntityID}, t.Related...)
}
