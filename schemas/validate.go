package schemas

import (
	"math"
	"time"
	"unicode"
	"unicode/utf8"
)

// Time bounds for every timestamp: ClickHouse DateTime holds 1970..2106, and
// no meter, licence or purchase of this system predates 2000.
var (
	MinTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Physical sanity bounds. A reading above MaxKW of average power is a meter
// or transport fault, not consumption: the largest feeder heads carry tens of
// MW.
const (
	MaxKW          = 1_000_000 // 1 GW average over the interval
	MaxIntervalS   = 86400
	MaxRatedPowerW = 100_000
	MaxIDLen       = 256
)

func checkID(field, v string, required bool) error {
	if v == "" {
		if required {
			return fieldErr(field, RuleMissing, "required field is missing or empty")
		}
		return nil
	}
	if len(v) > MaxIDLen {
		return fieldErr(field, RuleSize, "longer than %d bytes", MaxIDLen)
	}
	// ASCII, the usual ID, in one pass a byte; anything else rune by rune.
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= utf8.RuneSelf {
			return checkRunes(field, v)
		}
		if c < 0x20 || c == 0x7f {
			return fieldErr(field, RuleEncoding, "contains a control character")
		}
	}
	return nil
}

// checkRunes rejects a control character anywhere in v, then v that is not
// valid UTF-8.
func checkRunes(field, v string) error {
	for _, r := range v {
		if unicode.IsControl(r) {
			return fieldErr(field, RuleEncoding, "contains a control character")
		}
	}
	if !utf8.ValidString(v) {
		return fieldErr(field, RuleEncoding, "is not valid UTF-8")
	}
	return nil
}

func checkText(field, v string) error {
	if len(v) > 1024 {
		return fieldErr(field, RuleSize, "longer than 1024 bytes")
	}
	return nil
}

// checkTime checks a timestamp. Decoders report an absent one themselves, so
// a zero time here was given as 0001-01-01 and is out of range.
func checkTime(field string, t time.Time, required bool) error {
	if t.IsZero() && !required {
		return nil
	}
	if t.Before(MinTime) || !t.Before(MaxTime) {
		return fieldErr(field, RuleRange, "timestamp %s is outside %d..%d", t.Format(time.RFC3339), MinTime.Year(), MaxTime.Year()-1)
	}
	return nil
}

func checkNumber(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fieldErr(field, RuleFinite, "must be a finite number")
	}
	return nil
}

func checkEnum(field, v string, allowed ...string) error {
	if v == "" {
		return fieldErr(field, RuleMissing, "required field is missing or empty")
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fieldErr(field, RuleEnum, "unknown value %q (want one of %v)", v, allowed)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Validate checks l against the contract.
func (l *License) Validate() error {
	if err := firstErr(
		checkID("license_id", l.LicenseID, true),
		checkID("operator_id", l.OperatorID, true),
		checkText("operator_name", l.OperatorName),
		checkEnum("status", l.Status, LicenseActive, LicenseSuspended, LicenseRevoked, LicenseExpired),
		checkTime("valid_from", l.ValidFrom, true),
		checkTime("valid_to", l.ValidTo, true),
		checkTime("updated_at", l.UpdatedAt, true),
	); err != nil {
		return err
	}
	if l.ValidTo.Before(l.ValidFrom) {
		return fieldErr("valid_to", RuleRange, "is before valid_from")
	}
	if c := l.LicensedCapacityKW; c != nil {
		if err := checkNumber("licensed_capacity_kw", *c); err != nil {
			return err
		}
		if *c < 0 {
			return fieldErr("licensed_capacity_kw", RuleRange, "must be >= 0, got %g", *c)
		}
	}
	return nil
}

// Validate checks r against the contract.
func (r *Rig) Validate() error {
	if err := firstErr(
		checkID("rig_id", r.RigID, true),
		checkID("serial", r.Serial, true),
		checkText("model", r.Model),
		checkNumber("rated_power_w", r.RatedPowerW),
		checkID("operator_id", r.OperatorID, true),
		checkID("license_id", r.LicenseID, true),
		checkID("site_id", r.SiteID, true),
		checkEnum("status", r.Status, RigActive, RigSuspended, RigDecommissioned),
		checkTime("updated_at", r.UpdatedAt, true),
	); err != nil {
		return err
	}
	if r.RatedPowerW <= 0 || r.RatedPowerW > MaxRatedPowerW {
		return fieldErr("rated_power_w", RuleRange, "must be > 0 and <= %d, got %g", MaxRatedPowerW, r.RatedPowerW)
	}
	if h := r.HashrateTHs; h != nil {
		if err := checkNumber("hashrate_ths", *h); err != nil {
			return err
		}
		if *h < 0 {
			return fieldErr("hashrate_ths", RuleRange, "must be >= 0, got %g", *h)
		}
	}
	return nil
}

// Validate checks m against the contract.
func (m *Meter) Validate() error {
	if err := firstErr(
		checkID("meter_id", m.MeterID, true),
		checkID("feeder_id", m.FeederID, true),
		checkEnum("role", m.Role, RoleFeederHead, RoleSite, RoleCustomer),
		checkEnum("class", m.Class, ClassResidential, ClassSocial, ClassCommercial, ClassIndustrial, ClassMining),
		checkID("site_id", m.SiteID, m.Role == RoleSite),
		checkText("oblast", m.Oblast),
		checkTime("updated_at", m.UpdatedAt, true),
	); err != nil {
		return err
	}
	return nil
}

// Validate checks r against the contract; a zero IntervalS takes the default.
func (r *Reading) Validate() error {
	if r.IntervalS == 0 {
		r.IntervalS = DefaultIntervalS
	}
	if err := firstErr(
		checkID("meter_id", r.MeterID, true),
		checkTime("ts", r.TS, true),
		checkNumber("kwh", r.KWh),
	); err != nil {
		return err
	}
	if r.IntervalS < 0 || r.IntervalS > MaxIntervalS {
		return fieldErr("interval_s", RuleRange, "must be > 0 and <= %d, got %d", MaxIntervalS, r.IntervalS)
	}
	if r.KWh < 0 {
		return fieldErr("kwh", RuleRange, "must be >= 0, got %g", r.KWh)
	}
	if max := MaxKW * float64(r.IntervalS) / 3600; r.KWh > max {
		return fieldErr("kwh", RuleRange, "%g kWh in %d s is above the physical limit %g kWh", r.KWh, r.IntervalS, max)
	}
	return nil
}

// Validate checks p against the contract. Transactions above 1 MWh are
// accepted: they are a finding (oversized_purchase), not bad input.
func (p *Purchase) Validate() error {
	if err := firstErr(
		checkID("tx_id", p.TxID, true),
		checkID("operator_id", p.OperatorID, true),
		checkID("site_id", p.SiteID, false),
		checkNumber("mwh", p.MWh),
		checkTime("ts", p.TS, true),
	); err != nil {
		return err
	}
	if p.MWh <= 0 || p.MWh > 1e6 {
		return fieldErr("mwh", RuleRange, "must be > 0 and <= 1e6, got %g", p.MWh)
	}
	if pr := p.PriceKZTPerMWh; pr != nil {
		if err := checkNumber("price_kzt_per_mwh", *pr); err != nil {
			return err
		}
		if *pr < 0 {
			return fieldErr("price_kzt_per_mwh", RuleRange, "must be >= 0, got %g", *pr)
		}
	}
	return nil
}
