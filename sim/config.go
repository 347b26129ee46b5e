package sim

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// Defaults used for zero Config fields.
const (
	DefaultFeeders         = 40
	DefaultDays            = 14
	DefaultMetersPerFeeder = 50
	DefaultRigsPerFeeder   = 125
)

// DefaultStart is local midnight of 2025-10-01 in Kazakhstan (UTC+5).
var DefaultStart = time.Date(2025, 10, 1, 0, 0, 0, 0, schemas.Local)

var errConfig = errors.New("invalid simulation config")

// Config describes a scenario. Zero values mean defaults:
//
//	Feeders          40
//	MetersPerFeeder  50 on average, including the feeder-head meter
//	Days             14
//	Preset           PresetGrid; PresetTheft and PresetOffices build the
//	                 special-purpose scenarios described at their names
//	IntervalS        900 (also 300, 600, 1800 and 3600); with 900, about one
//	                 feeder in ten meters every 1800 s instead; PresetTheft
//	                 defaults to 1800 and PresetOffices to 3600
//	Rigs             125 per feeder (the national demo uses 415000)
//	Operators        84 per 2000 feeders, at least 8, at most one per site
//	Start            DefaultStart; must be whole minutes
//	Incidents        nil = every alert kind; empty non-nil = none (a clean grid)
type Config struct {
	Seed            int64
	Preset          string
	Feeders         int
	MetersPerFeeder int
	Days            int
	IntervalS       int
	Rigs            int
	Operators       int
	Start           time.Time
	Incidents       []string
}

// Scenario presets.
const (
	// PresetGrid is the national grid in miniature: residential,
	// commercial, industrial and mining feeders with every incident kind.
	PresetGrid = "grid"
	// PresetTheft is the false-data-injection benchmark of the theft
	// literature: residential feeders of about 33 real household meters,
	// 30 days of half-hourly readings, a head meter on each, half of the
	// feeders without technical losses (an observer meter measuring the
	// exact total). On each feeder with theft, 5 meters under-report on 15
	// of the days from the first day, by one of the attacks after Jokar et
	// al. (2016) or a mix of them.
	PresetTheft = "theft"
	// PresetOffices is a year of hourly readings of commercial buildings:
	// business hours, public holidays, closed and quiet weeks, Monday
	// returns, steady plant and meters that get stuck. Nothing in it is
	// mining.
	PresetOffices = "offices"
)

// Presets lists the scenario presets.
var Presets = []string{PresetGrid, PresetTheft, PresetOffices}

func (c Config) withDefaults() Config {
	if c.Preset == "" {
		c.Preset = PresetGrid
	}
	switch c.Preset {
	case PresetTheft:
		if c.Feeders == 0 {
			c.Feeders = 14
		}
		if c.MetersPerFeeder == 0 {
			c.MetersPerFeeder = 34
		}
		if c.Days == 0 {
			c.Days = 30
		}
		if c.IntervalS == 0 {
			c.IntervalS = 1800
		}
	case PresetOffices:
		if c.Feeders == 0 {
			c.Feeders = 3
		}
		if c.MetersPerFeeder == 0 {
			c.MetersPerFeeder = 5
		}
		if c.Days == 0 {
			c.Days = 365
		}
		if c.IntervalS == 0 {
			c.IntervalS = 3600
		}
		if c.Start.IsZero() {
			c.Start = time.Date(2025, 1, 1, 0, 0, 0, 0, schemas.Local)
		}
	}
	if c.Feeders == 0 {
		c.Feeders = DefaultFeeders
	}
	if c.MetersPerFeeder == 0 {
		c.MetersPerFeeder = DefaultMetersPerFeeder
	}
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.IntervalS == 0 {
		c.IntervalS = schemas.DefaultIntervalS
	}
	if c.Rigs == 0 {
		c.Rigs = DefaultRigsPerFeeder * c.Feeders
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Incidents == nil {
		c.Incidents = append([]string(nil), schemas.AlertKinds...)
	}
	return c
}

// Validate reports whether the config, with its defaults applied, describes a
// scenario New can build.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Feeders < 1 || c.Feeders > 100000:
		return fmt.Errorf("%w: feeders %d out of 1..100000", errConfig, c.Feeders)
	case c.MetersPerFeeder < 5 || c.MetersPerFeeder > 5000:
		return fmt.Errorf("%w: meters per feeder %d out of 5..5000", errConfig, c.MetersPerFeeder)
	case c.Days < 1 || c.Days > 366:
		return fmt.Errorf("%w: days %d out of 1..366", errConfig, c.Days)
	case c.IntervalS != 300 && c.IntervalS != 600 && c.IntervalS != 900 && c.IntervalS != 1800 && c.IntervalS != 3600:
		return fmt.Errorf("%w: interval %d s is not 300, 600, 900, 1800 or 3600", errConfig, c.IntervalS)
	case !slices.Contains(Presets, c.Preset):
		return fmt.Errorf("%w: unknown preset %q (want %s)", errConfig, c.Preset, strings.Join(Presets, ", "))
	case c.Rigs < 0 || c.Operators < 0:
		return fmt.Errorf("%w: negative rigs or operators", errConfig)
	case c.Start.Truncate(time.Minute) != c.Start:
		return fmt.Errorf("%w: start %s is not a whole minute", errConfig, c.Start)
	}
	for _, k := range c.Incidents {
		if !knownKind(k) {
			return fmt.Errorf("%w: unknown incident kind %q", errConfig, k)
		}
	}
	return nil
}

func knownKind(k string) bool {
	for _, x := range schemas.AlertKinds {
		if x == k {
			return true
		}
	}
	return false
}
