package web_test

import (
	"fmt"
	"math"
	"math/rand"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// The browser tests' grid: three days of 15-minute readings on three
// feeders, written through the store like ingest writes them.
//
//   - EKZ-F017 (East Kazakhstan): 24 households, a school, a shop and the
//     mining site S-UST-04 of Altai Hash LLP (40 Antminer S19j Pro, 130 kW;
//     10 more registered at +36 h). The site draws 126 kW, then from +40 h
//     185 kW, above even its new capacity. From +44 h a hidden 90 kW load
//     takes power before any meter: the head meter sees it, no meter does.
//   - ALM-F102 (Almaty): 10 households, 5% technical loss.
//   - PVL-F044 (Pavlodar): 15 households, 9.5% loss: just beyond the band.
var (
	scenStart   = time.Date(2025, 10, 6, 19, 0, 0, 0, time.UTC) // 00:00 on 7 October, UTC+5
	scenEnd     = scenStart.Add(72 * time.Hour)
	theftStart  = scenStart.Add(44 * time.Hour)
	overStart   = scenStart.Add(40 * time.Hour)
	regUpdated  = time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)
	rigsAddedAt = scenStart.Add(36 * time.Hour)
)

const (
	feederID   = "EKZ-F017"
	siteID     = "S-UST-04"
	siteMeter  = "M-S-UST04"
	operatorID = "OP-ALTAI-HASH"
	licenceID  = "KZ-ML-2024-0117"
	theftKW    = 90.0
	tariffKZT  = 25.0
	lossBand   = 0.08
)

func f64(v float64) *float64 { return &v }

// household is a daily load profile in kW at local hour h: a night base, a
// morning and an evening peak.
func household(h, scale float64) float64 {
	return scale * (0.25 + 0.35*math.Exp(-(h-8)*(h-8)/4) + 0.75*math.Exp(-(h-20.5)*(h-20.5)/5))
}

type scenario struct {
	batch *schemas.Batch
	// head and meters: EKZ-F017's energy in kWh from theftStart to scenEnd.
	headKWh, metersKWh float64
	meterCount         int
}

func buildScenario() *scenario {
	rng := rand.New(rand.NewSource(17))
	b := &schemas.Batch{}
	b.Licenses = []schemas.License{{LicenseID: licenceID, OperatorID: operatorID, OperatorName: "Altai Hash LLP", Status: schemas.LicenseActive,
		ValidFrom: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), ValidTo: time.Date(2027, 2, 28, 0, 0, 0, 0, time.UTC), LicensedCapacityKW: f64(250), UpdatedAt: regUpdated}}
	for i := 1; i <= 50; i++ {
		upd := regUpdated
		if i > 40 {
			upd = rigsAddedAt
		}
		b.Rigs = append(b.Rigs, schemas.Rig{RigID: fmt.Sprintf("RIG-UST04-%03d", i), Serial: fmt.Sprintf("SJP-22-%06d", 410000+i), Model: "Antminer S19j Pro",
			RatedPowerW: 3250, OperatorID: operatorID, LicenseID: licenceID, SiteID: siteID, Status: schemas.RigActive, UpdatedAt: upd})
	}
	type meter struct {
		schemas.Meter
		kw func(t time.Time) float64
	}
	var ms []meter
	addFeeder := func(fid, oblast, class string, households int, extra []meter) {
		var down []meter
		for i := 1; i <= households; i++ {
			scale := 0.6 + 0.8*rng.Float64()
			down = append(down, meter{Meter: schemas.Meter{MeterID: fmt.Sprintf("M-%s-C%02d", fid, i), FeederID: fid, Role: schemas.RoleCustomer, Class: "residential", Oblast: oblast, UpdatedAt: regUpdated},
				kw: func(t time.Time) float64 { return household(localHour(t), scale) * (0.9 + 0.2*rng.Float64()) }})
		}
		down = append(down, extra...)
		ms = append(ms, down...)
		ms = append(ms, meter{Meter: schemas.Meter{MeterID: "M-" + fid + "-HEAD", FeederID: fid, Role: schemas.RoleFeederHead, Class: class, Oblast: oblast, UpdatedAt: regUpdated},
			kw: nil})
	}
	const ekz = "East Kazakhstan"
	addFeeder(feederID, ekz, "residential", 24, []meter{
		{Meter: schemas.Meter{MeterID: "M-EKZ-F017-SCH", FeederID: feederID, Role: schemas.RoleCustomer, Class: "social", Oblast: ekz, UpdatedAt: regUpdated},
			kw: func(t time.Time) float64 {
				if h := localHour(t); h >= 8 && h < 17 {
					return 14
				}
				return 2.5
			}},
		{Meter: schemas.Meter{MeterID: "M-EKZ-F017-SHOP", FeederID: feederID, Role: schemas.RoleCustomer, Class: "commercial", Oblast: ekz, UpdatedAt: regUpdated},
			kw: func(t time.Time) float64 {
				if h := localHour(t); h >= 9 && h < 22 {
					return 6
				}
				return 1.2
			}},
		{Meter: schemas.Meter{MeterID: siteMeter, FeederID: feederID, Role: schemas.RoleSite, Class: "mining", SiteID: siteID, Oblast: ekz, UpdatedAt: regUpdated},
			kw: func(t time.Time) float64 {
				if !t.Before(overStart.Add(15 * time.Minute)) {
					return 185 + 2*rng.Float64()
				}
				return 126 + 2*rng.Float64()
			}},
	})
	addFeeder("ALM-F102", "Almaty", "residential", 10, nil)
	addFeeder("PVL-F044", "Pavlodar", "residential", 15, nil)
	loss := map[string]float64{feederID: 0.05, "ALM-F102": 0.05, "PVL-F044": 0.095}
	for _, m := range ms {
		b.Meters = append(b.Meters, m.Meter)
	}

	s := &scenario{batch: b}
	for ts := scenStart.Add(15 * time.Minute); !ts.After(scenEnd); ts = ts.Add(15 * time.Minute) {
		// Readings close their interval at ts: the load is sampled mid-interval.
		mid := ts.Add(-7*time.Minute - 30*time.Second)
		sum := map[string]float64{}
		for _, m := range ms {
			if m.kw == nil {
				continue
			}
			kwh := round3(m.kw(mid) / 4)
			sum[m.FeederID] += kwh
			b.Readings = append(b.Readings, schemas.Reading{MeterID: m.MeterID, TS: ts, KWh: kwh, IntervalS: 900, Meta: schemas.Meta{Version: 1}})
		}
		for fid, kwh := range sum {
			head := kwh * (1 + loss[fid])
			if fid == feederID && ts.After(theftStart) {
				head += theftKW / 4
			}
			head = round3(head)
			b.Readings = append(b.Readings, schemas.Reading{MeterID: "M-" + fid + "-HEAD", TS: ts, KWh: head, IntervalS: 900, Meta: schemas.Meta{Version: 1}})
			if fid == feederID && ts.After(theftStart) {
				s.headKWh += head
				s.metersKWh += kwh
			}
		}
	}
	for _, m := range ms {
		if m.FeederID == feederID && m.Role != schemas.RoleFeederHead {
			s.meterCount++
		}
	}
	// The operator buys three 1 MWh lots a day: enough for 126 kW, short
	// for 185 kW.
	for d := 0; d < 3; d++ {
		for k := 0; k < 3; k++ {
			b.Purchases = append(b.Purchases, schemas.Purchase{TxID: fmt.Sprintf("KOREM-2025-10-%02d-%d", 7+d, k+1), OperatorID: operatorID, SiteID: siteID, MWh: 1,
				PriceKZTPerMWh: f64(21500), TS: scenStart.Add(time.Duration(24*d+3+6*k) * time.Hour), Meta: schemas.Meta{Version: 1}})
		}
	}
	return s
}

func localHour(t time.Time) float64 {
	l := t.Add(5 * time.Hour)
	return float64(l.Hour()) + float64(l.Minute())/60
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// seededAlerts are the alerts already on the board when the tests start.
func seededAlerts() []schemas.Alert {
	mk := func(id, kind, sev, et, eid, oblast, summary string, start, end time.Time, obs, exp float64) schemas.Alert {
		a := schemas.Alert{AlertID: id, Kind: kind, Severity: sev, EntityType: et, EntityID: eid, Oblast: oblast, WindowStart: start, WindowEnd: end,
			DetectedAt: end, Score: 2.5, Summary: summary, Evidence: map[string]any{"method": "test fixture"}}
		if obs > 0 {
			a.ObservedKWh, a.ExpectedKWh, a.ExcessKWh = f64(obs), f64(exp), f64(obs-exp)
			a.EstimatedValueKZT = f64(math.Round((obs - exp) * tariffKZT))
		}
		return a
	}
	over := mk("oc-"+siteMeter+"-20251008", schemas.KindOverCapacity, schemas.SeverityWarning, "meter", siteMeter, "East Kazakhstan",
		"Site S-UST-04 drew 186 kW for 32 h against 162.5 kW of registered rigs (+10% allowance 178.8 kW)", overStart, scenEnd, 5952, 5720)
	over.MeterID, over.FeederID, over.SiteID, over.OperatorID, over.LicenseID = siteMeter, feederID, siteID, operatorID, licenceID
	short := mk("ps-"+operatorID+"-2025-10-08", schemas.KindPurchaseShortfall, schemas.SeverityInfo, "operator", operatorID, "East Kazakhstan",
		"Altai Hash LLP consumed 3.9 MWh on 8 October but bought 3.0 MWh on the marketplace", scenStart.Add(24*time.Hour), scenStart.Add(48*time.Hour), 3900, 3000)
	short.OperatorID, short.SiteID = operatorID, siteID
	dup := mk("rv-serial-SJP-22-118204", schemas.KindRegistryViolation, schemas.SeverityWarning, "rig", "RIG-PVL-0412", "Pavlodar",
		"Serial SJP-22-118204 is registered twice among active rigs (RIG-PVL-0412, RIG-PVL-0977)", scenStart, scenStart, 0, 0)
	dup.RigID = "RIG-PVL-0412"
	unreg := mk("ul-M-PVL-F044-C07", schemas.KindUnregisteredLoad, schemas.SeverityCritical, "meter", "M-PVL-F044-C07", "Pavlodar",
		"Household meter M-PVL-F044-C07 carries a flat 38 kW load round the clock for 3 days: mining-like, no rigs registered", scenStart, scenEnd, 2736, 65)
	unreg.MeterID, unreg.FeederID = "M-PVL-F044-C07", "PVL-F044"
	big := mk("op-KOREM-2025-10-03-77", schemas.KindOversizedPurchase, schemas.SeverityInfo, "purchase", "KOREM-2025-10-03-77", "Almaty",
		"Marketplace transaction KOREM-2025-10-03-77 of 1.4 MWh exceeds the 1 MWh limit", scenStart.Add(-72*time.Hour), scenStart.Add(-72*time.Hour), 0, 0)
	big.TxID, big.OperatorID = "KOREM-2025-10-03-77", "OP-ZHETYSU-DC"
	return []schemas.Alert{big, dup, unreg, short, over}
}

// liveAlert is the feeder_imbalance finding on EKZ-F017, with the figures
// of the written readings, as the detector would raise it.
func (s *scenario) liveAlert() schemas.Alert {
	expected := s.metersKWh * (1 + lossBand)
	excess := s.headKWh - expected
	frac := (s.headKWh - s.metersKWh) / s.headKWh
	return schemas.Alert{AlertID: "fi-" + feederID + "-20251008T1400", Kind: schemas.KindFeederImbalance, Severity: schemas.SeverityCritical,
		EntityType: "feeder", EntityID: feederID, FeederID: feederID, Oblast: "East Kazakhstan", WindowStart: theftStart, WindowEnd: scenEnd, DetectedAt: theftStart.Add(2 * time.Hour),
		ObservedKWh: f64(round3(s.headKWh)), ExpectedKWh: f64(round3(expected)), ExcessKWh: f64(round3(excess)), EstimatedValueKZT: f64(math.Round(excess * tariffKZT)),
		Score: 9.1, Summary: fmt.Sprintf("Feeder %s: the head meter measured %.0f kWh more than its %d meters over 28 h, %.0f%% unaccounted against an 8%% loss band: about %.0f kW taken before any meter",
			feederID, s.headKWh-s.metersKWh, s.meterCount, 100*frac, excess/28),
		Evidence: map[string]any{"head_kwh": round3(s.headKWh), "meters_kwh": round3(s.metersKWh), "loss_fraction": lossBand, "unaccounted_fraction": round3(frac),
			"hours": 28, "meters": s.meterCount, "method": "feeder balance: head minus the sum of downstream meters, beyond the technical loss band, sustained"}}
}

// shift moves everything in the scenario by d: its readings, purchases and
// registry records, so the data can lie anywhere against the wall clock.
func (s *scenario) shift(d time.Duration) {
	b := s.batch
	for i := range b.Licenses {
		l := &b.Licenses[i]
		l.ValidFrom, l.ValidTo, l.UpdatedAt = l.ValidFrom.Add(d), l.ValidTo.Add(d), l.UpdatedAt.Add(d)
	}
	for i := range b.Rigs {
		b.Rigs[i].UpdatedAt = b.Rigs[i].UpdatedAt.Add(d)
	}
	for i := range b.Meters {
		b.Meters[i].UpdatedAt = b.Meters[i].UpdatedAt.Add(d)
	}
	for i := range b.Readings {
		b.Readings[i].TS = b.Readings[i].TS.Add(d)
	}
	for i := range b.Purchases {
		b.Purchases[i].TS = b.Purchases[i].TS.Add(d)
	}
}

// shiftAlert moves an alert's times by d, as shift moves the data.
func shiftAlert(a schemas.Alert, d time.Duration) schemas.Alert {
	a.WindowStart, a.WindowEnd, a.DetectedAt = a.WindowStart.Add(d), a.WindowEnd.Add(d), a.DetectedAt.Add(d)
	return a
}
