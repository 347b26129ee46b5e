package detect

import (
	"errors"
	"fmt"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// ErrConfig is wrapped by every error about an unusable Config.
var ErrConfig = errors.New("invalid detect config")

// Config configures an Engine. The zero value is valid; every zero field
// means the default given beside it.
type Config struct {
	// Lookback is the history each evaluation looks back over: baselines,
	// loss models and peers are fitted on the Lookback before the local day
	// being evaluated. Default 28 days: four weeks give a meter weekday and
	// weekend profiles that a public holiday, a closed week or a quiet week
	// does not drag down, and a feeder's loss model the whole range of its
	// load.
	Lookback time.Duration
	// Warmup is how far before from a fresh Engine (or one called with a from
	// that is not where the previous call ended) replays evaluations without
	// reporting, to pick up findings already under way; never before the
	// hour the first reading ends in. Default 1 day.
	Warmup time.Duration
	// ReadOverlap is how much of the hours a continuing Evaluate has read
	// before it reads again, for readings that were in flight to the store
	// when it read them; older late readings are read again only when
	// Invalidate names their hours. A whole number of hours; default 0.
	ReadOverlap time.Duration
	// Location is the settlement time zone: calendar days and months of
	// purchase_shortfall, and local hours of day. Default Local (UTC+5).
	Location *time.Location
	// TariffKZTPerKWh values excess energy in estimated_value_kzt.
	// Default 25 KZT/kWh.
	TariffKZTPerKWh float64

	// CoolingAllowance is the share of registered rated power a site may
	// draw on top for cooling and losses before it is over capacity.
	// Default 0.12 (air-cooled containers run fans and transformers at
	// 3-10% of IT load; 12% leaves margin for metering error).
	CoolingAllowance float64
	// OverCapacityHours is how many consecutive hours every hourly mean
	// power must stay above the allowance: never a single spike. Default 3.
	OverCapacityHours int
	// RelativeStep: a site that normally runs at full registered power
	// (median draw >= 90% of capacity) and whose draw rises by this share
	// above its own best day of the lookback, above its nameplate, is over
	// capacity even within the allowance. Default 0.08.
	RelativeStep float64

	// MinStepKW is the smallest sustained load step taken for unregistered
	// mining: two to three ASICs. Default 6 kW.
	MinStepKW float64
	// MinStepShare is the smallest load step, as a share of the meter's
	// usual load at that hour, taken for unregistered mining: mining adds
	// whole machines on top of a load, while a legitimate load's day-to-day
	// swings are a fraction of itself (a 2 MW plant varies by 50 kW).
	// Default 0.25.
	MinStepShare float64
	// UnregisteredHours is how many consecutive hours the step must hold.
	// Default 4.
	UnregisteredHours int
	// ResidentialMaxKW is a sustained flat level no household draws (the
	// supply limit of a residential connection); a residential meter above
	// it is judged without its own history. Default 15 kW.
	ResidentialMaxKW float64
	// MaxFlatCV is the largest coefficient of variation of the hourly load
	// step that still counts as the flat draw of mining. Default 0.25.
	MaxFlatCV float64
	// PlateauMaxJitter is the largest reading-to-reading jitter (standard
	// deviation of the sub-hourly power, von Neumann's estimator, relative
	// to the level) of a plateau taken for mining on a meter whose own
	// history cannot show a step (mining already running when the data
	// starts). An ASIC at fixed clocks draws within about 1% of a constant
	// (switch-mode supplies, fans under closed-loop control); loads of
	// people and thermostats move by 5% or more from one 15-minute reading
	// to the next (compressors cycling, lights and appliances switched).
	// 2% leaves room for a small legitimate load on the same meter.
	// Default 0.02.
	PlateauMaxJitter float64
	// PlateauMinDiffs is how many successive reading differences the
	// jitter needs (the estimate's relative error is about 1/sqrt(d)): a
	// window of UnregisteredHours is widened (up to a day) until it holds
	// this many, so 30- and 60-minute meters are judged on as much evidence
	// as 15-minute ones; half as many suffice for a plateau under half
	// PlateauMaxJitter. Default 24 (six hours of 15-minute readings).
	PlateauMinDiffs int
	// PeerMultiple: a plateau without own history must also be at least
	// this many times what meters of the meter's class typically draw at
	// the same local hour: mining is tens of kW of machines where a shop or
	// flat draws a few. Default 3.
	PeerMultiple float64

	// ImbalanceFraction is the smallest unexplained share of a feeder's
	// metered energy, hour by hour, that counts as diversion. Default 0.02.
	ImbalanceFraction float64
	// DailyImbalanceFraction is the smallest unexplained share of a feeder's
	// metered energy over its last 24 complete hours that counts as
	// diversion: under-reporting meters spread their theft over the day.
	// Default 0.01.
	DailyImbalanceFraction float64
	// ImbalanceFloor is the smallest unexplained energy in an hour, as a
	// share of the feeder's typical hourly load over the lookback, that
	// counts as diversion: when the load falls away (a mining site closed
	// for good), the transformers' no-load losses stay and must not look
	// like theft. Default 0.01.
	ImbalanceFloor float64
	// LossBands are the physically plausible technical losses of a
	// distribution feeder by class (the class of its head meter), as shares
	// of its metered energy. A fitted loss model above its band, or far
	// above its peers of the class (their median plus three robust standard
	// deviations, with at least 3 peers), is never accepted as normal: the
	// feeder is judged against its peers' median (or the band's typical
	// value) instead, since theft that predates the data would otherwise be
	// learned as loss. Classes not listed use DefaultLossBand.
	LossBands map[string]LossBand
	// ImbalanceCloseAfter is how long a feeder_imbalance may stop holding
	// before its episode closes: under-reporting meters steal on some days
	// and not others, and one case per feeder is what an investigator
	// wants. Default 7 days.
	ImbalanceCloseAfter time.Duration
	// ImbalanceHours is how many complete hours the residual must hold.
	// Default 4.
	ImbalanceHours int
	// MinFitHours is how many complete hours of history a feeder's loss
	// model needs. Default 24: one day spans the feeder's whole load range,
	// night minimum to evening peak, which is what pins the linear and
	// quadratic loss terms (two parameters on 24 points); waiting for a
	// second day left diversion that began on day two unseen, as the fit
	// then absorbed it into "losses".
	MinFitHours int

	// ShortfallTolerance is the share of a settlement period's metered
	// consumption that an operator's prepaid deficit at the period's end
	// must exceed to be reported. Default 0.02.
	ShortfallTolerance float64
	// ShortfallMinKWh is the smallest deficit reported: one marketplace
	// transaction's worth. Default 1000 kWh (1 MWh).
	ShortfallMinKWh float64
	// SettlementGrace is how long after a settlement period ends a purchase
	// still counts for it: operators lawfully buy just after midnight for
	// the evening before. A period is settled once the grace has passed.
	// Default 2 hours.
	SettlementGrace time.Duration

	// StuckHours is how many hours in a row a meter must report one
	// unchanging non-zero reading to be reported as stuck (data_quality).
	// Default 6.
	StuckHours int
	// PeerQuantile: a flat load that its meter's own history shows as
	// usual is taken for mining only if it is also above this quantile of
	// what meters of its class typically draw at the same hour (and above
	// PeerMultiple times their median): a large shop's steady plant is
	// usual among shops. Default 0.95.
	PeerQuantile float64
	// MaxPurchaseMWh is the largest single marketplace transaction allowed.
	// Default schemas.MaxPurchaseMWh (1 MWh).
	MaxPurchaseMWh float64

	// CloseAfter is how long a finding may stop holding before its episode
	// closes; a later recurrence is a new alert. Default 48 hours.
	CloseAfter time.Duration
}

// LossBand is a range of technical loss shares.
type LossBand struct {
	Min, Typical, Max float64
}

// DefaultLossBand is the loss band of a distribution feeder: typically 2-6%
// of the energy delivered; an observer meter on a feeder with no losses
// reads 0.
var DefaultLossBand = LossBand{Min: 0, Typical: 0.035, Max: 0.06}

// lossBand returns the loss band of a feeder class.
func (c *Config) lossBand(class string) LossBand {
	if b, ok := c.LossBands[class]; ok {
		return b
	}
	return DefaultLossBand
}

func (c Config) withDefaults() Config {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Lookback == 0 {
		c.Lookback = 28 * 24 * time.Hour
	}
	if c.ImbalanceCloseAfter == 0 {
		c.ImbalanceCloseAfter = 7 * 24 * time.Hour
	}
	if c.SettlementGrace == 0 {
		c.SettlementGrace = 2 * time.Hour
	}
	if c.Warmup == 0 {
		c.Warmup = 24 * time.Hour
	}
	if c.Location == nil {
		c.Location = schemas.Local
	}
	if c.CloseAfter == 0 {
		c.CloseAfter = 48 * time.Hour
	}
	def(&c.TariffKZTPerKWh, 25)
	def(&c.CoolingAllowance, 0.12)
	defInt(&c.OverCapacityHours, 3)
	def(&c.RelativeStep, 0.08)
	def(&c.MinStepKW, 6)
	def(&c.MinStepShare, 0.25)
	defInt(&c.UnregisteredHours, 4)
	def(&c.ResidentialMaxKW, 15)
	def(&c.MaxFlatCV, 0.25)
	def(&c.PlateauMaxJitter, 0.02)
	defInt(&c.PlateauMinDiffs, 24)
	def(&c.PeerMultiple, 3)
	def(&c.ImbalanceFraction, 0.02)
	def(&c.DailyImbalanceFraction, 0.01)
	def(&c.ImbalanceFloor, 0.01)
	defInt(&c.StuckHours, 6)
	def(&c.PeerQuantile, 0.95)
	defInt(&c.ImbalanceHours, 4)
	defInt(&c.MinFitHours, 24)
	def(&c.ShortfallTolerance, 0.02)
	def(&c.ShortfallMinKWh, 1000)
	def(&c.MaxPurchaseMWh, schemas.MaxPurchaseMWh)
	return c
}

// Validate reports whether the configuration, with defaults applied, is
// usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	hour := func(name string, d time.Duration) error {
		if d < time.Hour || d%time.Hour != 0 {
			return fmt.Errorf("%w: %s %s must be a positive whole number of hours", ErrConfig, name, d)
		}
		return nil
	}
	for _, x := range []struct {
		n string
		d time.Duration
	}{{"lookback", c.Lookback}, {"warmup", c.Warmup}, {"close after", c.CloseAfter},
		{"imbalance close after", c.ImbalanceCloseAfter}, {"settlement grace", c.SettlementGrace}} {
		if err := hour(x.n, x.d); err != nil {
			return err
		}
	}
	if c.ReadOverlap < 0 || c.ReadOverlap%time.Hour != 0 || c.ReadOverlap > c.Lookback {
		return fmt.Errorf("%w: read overlap %s must be a whole number of hours within the lookback", ErrConfig, c.ReadOverlap)
	}
	if c.Lookback < 24*time.Hour {
		return fmt.Errorf("%w: lookback %s is shorter than a day", ErrConfig, c.Lookback)
	}
	if _, off := time.Date(2025, 1, 1, 0, 0, 0, 0, c.Location).Zone(); off%3600 != 0 {
		return fmt.Errorf("%w: location %s is not a whole number of hours from UTC", ErrConfig, c.Location)
	}
	for _, x := range []struct {
		n  string
		v  float64
		lo float64
		hi float64
	}{
		{"tariff", c.TariffKZTPerKWh, 0, 1e6}, {"cooling allowance", c.CoolingAllowance, 0, 1},
		{"relative step", c.RelativeStep, 0, 1}, {"min step kW", c.MinStepKW, 0, 1e6}, {"min step share", c.MinStepShare, 0, 100},
		{"residential max kW", c.ResidentialMaxKW, 0, 1e6}, {"max flat CV", c.MaxFlatCV, 0, 10},
		{"plateau max jitter", c.PlateauMaxJitter, 0, 1}, {"peer multiple", c.PeerMultiple, 0, 1e3},
		{"imbalance fraction", c.ImbalanceFraction, 0, 1},
		{"daily imbalance fraction", c.DailyImbalanceFraction, 0, 1}, {"imbalance floor", c.ImbalanceFloor, 0, 1},
		{"peer quantile", c.PeerQuantile, 0, 1},
		{"shortfall tolerance", c.ShortfallTolerance, 0, 1}, {"shortfall min kWh", c.ShortfallMinKWh, 0, 1e12},
		{"max purchase MWh", c.MaxPurchaseMWh, 0, 1e9},
	} {
		if !(x.v > x.lo && x.v <= x.hi) {
			return fmt.Errorf("%w: %s %v out of (%v, %v]", ErrConfig, x.n, x.v, x.lo, x.hi)
		}
	}
	for _, x := range []struct {
		n string
		v int
	}{{"over capacity hours", c.OverCapacityHours}, {"unregistered hours", c.UnregisteredHours},
		{"imbalance hours", c.ImbalanceHours}, {"min fit hours", c.MinFitHours}, {"plateau min diffs", c.PlateauMinDiffs},
		{"stuck hours", c.StuckHours}} {
		if x.v < 1 || x.v > 24*7 {
			return fmt.Errorf("%w: %s %d out of 1..168", ErrConfig, x.n, x.v)
		}
	}
	for class, b := range c.LossBands {
		if !(b.Min >= 0 && b.Min <= b.Typical && b.Typical <= b.Max && b.Max < 1) {
			return fmt.Errorf("%w: loss band of %q must hold 0 <= min <= typical <= max < 1", ErrConfig, class)
		}
	}
	return nil
}
