package detect

import (
	"errors"
	"fmt"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// ErrConfig is wrapped by every error about an unusable Config.
var ErrConfig = errors.New("invalid detect config")

// Local is Kazakhstan's single time zone since 2024, UTC+5: the default
// settlement zone.
var Local = time.FixedZone("UTC+5", 5*3600)

// Config configures an Engine. The zero value is valid; every zero field
// means the default given beside it.
type Config struct {
	// Lookback is the history each evaluation looks back over: baselines,
	// loss models and peers are fitted on the Lookback before the local day
	// being evaluated. Default 7 days.
	Lookback time.Duration
	// Warmup is how far before from a fresh Engine (or one called with a from
	// that is not where the previous call ended) replays evaluations without
	// reporting, to pick up findings already under way. Default 1 day.
	Warmup time.Duration
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
	// metered energy that counts as diversion. Default 0.02.
	ImbalanceFraction float64
	// ImbalanceHours is how many complete hours the residual must hold.
	// Default 4.
	ImbalanceHours int
	// MaxTechLoss is the largest share of technical losses physically
	// plausible on a distribution feeder; a fitted loss model above it is
	// rejected, and without a model, head energy above the meters by more
	// than this share is diversion. Default 0.15.
	MaxTechLoss float64
	// MinFitHours is how many complete hours of history a feeder's loss
	// model needs. Default 24: one day spans the feeder's whole load range,
	// night minimum to evening peak, which is what pins the linear and
	// quadratic loss terms (two parameters on 24 points); waiting for a
	// second day left diversion that began on day two unseen, as the fit
	// then absorbed it into "losses".
	MinFitHours int

	// ShortfallTolerance is the share by which metered consumption may
	// exceed purchases in a settlement period (metering error, purchases
	// booked just after midnight). Default 0.02.
	ShortfallTolerance float64
	// ShortfallMinKWh is the smallest shortfall reported. Default 100 kWh.
	ShortfallMinKWh float64
	// MaxPurchaseMWh is the largest single marketplace transaction allowed.
	// Default schemas.MaxPurchaseMWh (1 MWh).
	MaxPurchaseMWh float64

	// CloseAfter is how long a finding may stop holding before its episode
	// closes; a later recurrence is a new alert. Default 48 hours.
	CloseAfter time.Duration
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
		c.Lookback = 7 * 24 * time.Hour
	}
	if c.Warmup == 0 {
		c.Warmup = 24 * time.Hour
	}
	if c.Location == nil {
		c.Location = Local
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
	defInt(&c.ImbalanceHours, 4)
	def(&c.MaxTechLoss, 0.15)
	defInt(&c.MinFitHours, 24)
	def(&c.ShortfallTolerance, 0.02)
	def(&c.ShortfallMinKWh, 100)
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
	}{{"lookback", c.Lookback}, {"warmup", c.Warmup}, {"close after", c.CloseAfter}} {
		if err := hour(x.n, x.d); err != nil {
			return err
		}
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
		{"imbalance fraction", c.ImbalanceFraction, 0, 1}, {"max tech loss", c.MaxTechLoss, 0, 1},
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
		{"imbalance hours", c.ImbalanceHours}, {"min fit hours", c.MinFitHours}, {"plateau min diffs", c.PlateauMinDiffs}} {
		if x.v < 1 || x.v > 24*7 {
			return fmt.Errorf("%w: %s %d out of 1..168", ErrConfig, x.n, x.v)
		}
	}
	return nil
}
