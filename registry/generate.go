package registry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// generatedModels are the catalogue models GenerateNational installs, with
// relative weights: mostly the S19 generation, some newer, some old S9s
// kept running on cheap coal power.
var generatedModels = []struct {
	name   string
	weight float64
}{
	{"Antminer S19 Pro", 20}, {"Antminer S19j Pro", 18}, {"Antminer S19", 10}, {"Antminer S19 XP", 8},
	{"Antminer S21", 5}, {"Antminer S19k Pro", 5}, {"Whatsminer M30S", 8}, {"Whatsminer M30S++", 6},
	{"Whatsminer M50S", 5}, {"Whatsminer M60S", 2}, {"Antminer T17+", 3}, {"Antminer S17+", 3},
	{"Avalon 1166", 3}, {"Avalon A1366", 2}, {"Antminer S9", 2},
}

// generatedOblasts are the regions mining sites are placed in, weighted
// towards the coal-power north and east.
var generatedOblasts = []struct {
	name   string
	weight float64
}{
	{"Pavlodar", 30}, {"East Kazakhstan", 18}, {"Karaganda", 15}, {"Abai", 10}, {"Akmola", 8},
	{"Almaty Region", 6}, {"Kostanay", 5}, {"Ulytau", 3}, {"Zhambyl", 3}, {"Turkistan", 2},
}

// rigsPerSite sizes the generated sites: about 2,000 for the national 415,000.
const rigsPerSite = 208

// GenerateNational returns a deterministic, clean national registry of the
// given size: one active licence per operator (licensed capacity 20-40%
// above what its rigs draw), rigs of real catalogue models registered over
// 2024-2025 at about rigs/208 sites of uneven size, and per site a feeder
// with a feeder-head meter and a site meter naming its oblast. Rigs come in
// rig-id order, which is not time order.
func GenerateNational(seed int64, rigs, operators int) ([]schemas.License, []schemas.Rig, []schemas.Meter) {
	operators = max(operators, 1)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed_0f_4a2a))
	cat := DefaultCatalogue()
	models := make([]Model, len(generatedModels))
	modelW := make([]float64, len(generatedModels))
	for i, g := range generatedModels {
		m, ok := cat.Lookup(g.name)
		if !ok {
			panic("generator model missing from catalogue: " + g.name)
		}
		models[i], modelW[i] = m, g.weight
	}
	oblastW := make([]float64, len(generatedOblasts))
	for i, o := range generatedOblasts {
		oblastW[i] = o.weight
	}

	nSites := max(operators, (rigs+rigsPerSite-1)/rigsPerSite)
	opW := make([]float64, operators)
	for i := range opW {
		opW[i] = 1 / math.Pow(float64(i+1), 0.8) // a few large operators, many small
	}
	siteOp := make([]int, nSites)
	siteW := make([]float64, nSites)
	var meters []schemas.Meter
	meterAt := time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC)
	for s := range nSites {
		if s < operators {
			siteOp[s] = s
		} else {
			siteOp[s] = pick(rng, opW)
		}
		siteW[s] = math.Exp(rng.NormFloat64() * 0.8)
		oblast := generatedOblasts[pick(rng, oblastW)].name
		feeder := fmt.Sprintf("FDR-%05d", s+1)
		meters = append(meters,
			schemas.Meter{MeterID: fmt.Sprintf("MH-%05d", s+1), FeederID: feeder, Role: schemas.RoleFeederHead,
				Class: schemas.ClassMining, Oblast: oblast, UpdatedAt: meterAt},
			schemas.Meter{MeterID: fmt.Sprintf("MS-%05d", s+1), FeederID: feeder, Role: schemas.RoleSite,
				Class: schemas.ClassMining, SiteID: siteID(s), Oblast: oblast, UpdatedAt: meterAt})
	}

	siteCum := cumulative(siteW)
	opIDs, licIDs := make([]string, operators), make([]string, operators)
	for o := range operators {
		opIDs[o], licIDs[o] = fmt.Sprintf("OP-%03d", o+1), fmt.Sprintf("KZ-MEC-%04d", o+1)
	}
	siteIDs := make([]string, nSites)
	for s := range siteIDs {
		siteIDs[s] = siteID(s)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	span := int64(600 * 24 * time.Hour / time.Second)
	opW2 := make([]float64, operators) // registered watts per operator
	out := make([]schemas.Rig, rigs)
	for i := range out {
		s := sort.SearchFloat64s(siteCum, rng.Float64()*siteCum[len(siteCum)-1])
		s = min(s, nSites-1)
		o := siteOp[s]
		m := models[pick(rng, modelW)]
		hr := m.HashrateTHs
		out[i] = schemas.Rig{
			RigID:       fmt.Sprintf("RIG-%07d", i+1),
			Serial:      serialOf(m.Maker, uint64(i)),
			Model:       m.Name,
			RatedPowerW: m.RatedPowerW,
			HashrateTHs: &hr,
			OperatorID:  opIDs[o],
			LicenseID:   licIDs[o],
			SiteID:      siteIDs[s],
			Status:      schemas.RigActive,
			UpdatedAt:   base.Add(time.Duration(rng.Int64N(span)) * time.Second),
		}
		opW2[o] += m.RatedPowerW
	}

	lics := make([]schemas.License, operators)
	for o := range lics {
		kw := math.Ceil(opW2[o]/1000*(1.2+0.2*rng.Float64())/100) * 100
		lics[o] = schemas.License{
			LicenseID:          licIDs[o],
			OperatorID:         opIDs[o],
			OperatorName:       fmt.Sprintf("Mining Operator %03d LLP", o+1),
			Status:             schemas.LicenseActive,
			ValidFrom:          time.Date(2023, 7, 1, 0, 0, 0, 0, time.UTC),
			ValidTo:            time.Date(2028, 7, 1, 0, 0, 0, 0, time.UTC),
			LicensedCapacityKW: &kw,
			UpdatedAt:          time.Date(2023, 6, 15, 0, 0, 0, 0, time.UTC),
		}
	}
	return lics, out, meters
}

func siteID(s int) string { return fmt.Sprintf("SITE-%04d", s+1) }

// serialOf returns a unique maker-style serial: the index scrambled by an
// odd multiplier, a bijection on 40 bits.
func serialOf(maker string, i uint64) string {
	code := "XX"
	switch maker {
	case "Bitmain":
		code = "BM"
	case "Whatsminer":
		code = "MW"
	case "Canaan":
		code = "CN"
	}
	return fmt.Sprintf("%s%010X", code, (i*0x9E3779B97F4A7C15)&(1<<40-1))
}

func cumulative(w []float64) []float64 {
	c := make([]float64, len(w))
	var sum float64
	for i, x := range w {
		sum += x
		c[i] = sum
	}
	return c
}

func pick(rng *rand.Rand, w []float64) int {
	var sum float64
	for _, x := range w {
		sum += x
	}
	r := rng.Float64() * sum
	for i, x := range w {
		if r < x {
			return i
		}
		r -= x
	}
	return len(w) - 1
}
