package registry

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// asic-models.csv is shared/data/asic-models.csv unchanged (F2Pool list of
// March 2020 plus three later Bitmain models); asic-models-extra.csv adds
// common current models from the makers' published specifications.
var (
	//go:embed data/asic-models.csv
	modelsCSV []byte
	//go:embed data/asic-models-extra.csv
	extraModelsCSV []byte
)

// Model is one ASIC mining machine model of the catalogue.
type Model struct {
	Maker       string  `json:"maker"`
	Name        string  `json:"model"`
	HashrateTHs float64 `json:"hashrate_ths"`
	RatedPowerW float64 `json:"rated_power_w"`
	Year        int     `json:"year_released"`
	Month       int     `json:"month_released"`
}

// Catalogue is a list of ASIC models looked up by name, tolerant of case,
// spacing, hyphens and parentheses. It is immutable and safe for concurrent
// use.
type Catalogue struct {
	models []Model
	// byKey maps a normalised name to its variants, newest first: a few
	// names (Antminer S9, Hummer Miner H7 Pro (48T)) were sold in more than
	// one configuration.
	byKey map[string][]int
}

var defaultCatalogue = sync.OnceValue(func() *Catalogue {
	c, err := ParseCatalogue(io.MultiReader(bytes.NewReader(modelsCSV), bytes.NewReader(skipHeader(extraModelsCSV))))
	if err != nil {
		panic(fmt.Sprintf("embedded ASIC model catalogue is invalid: %v", err))
	}
	return c
})

func skipHeader(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return nil
}

// DefaultCatalogue returns the embedded catalogue: the 89 models of
// shared/data/asic-models.csv plus a few current models (see
// data/asic-models-extra.csv).
func DefaultCatalogue() *Catalogue { return defaultCatalogue() }

// ParseCatalogue reads a catalogue in the CSV layout of asic-models.csv:
// a header naming at least model and rated_power_w, and optionally maker,
// hashrate_ths, year_released and month_released, in any order.
func ParseCatalogue(r io.Reader) (*Catalogue, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("cannot read catalogue header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	if _, ok := col["model"]; !ok {
		return nil, errors.New("catalogue header has no model column")
	}
	if _, ok := col["rated_power_w"]; !ok {
		return nil, errors.New("catalogue header has no rated_power_w column")
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	num := func(rec []string, name string) (float64, error) {
		s := get(rec, name)
		if s == "" {
			return 0, nil
		}
		return strconv.ParseFloat(s, 64)
	}
	c := &Catalogue{byKey: map[string][]int{}}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read catalogue line %d: %w", line, err)
		}
		m := Model{Maker: get(rec, "maker"), Name: get(rec, "model")}
		var errs [4]error
		m.RatedPowerW, errs[0] = num(rec, "rated_power_w")
		m.HashrateTHs, errs[1] = num(rec, "hashrate_ths")
		y, e2 := num(rec, "year_released")
		mo, e3 := num(rec, "month_released")
		errs[2], errs[3] = e2, e3
		m.Year, m.Month = int(y), int(mo)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("cannot parse catalogue line %d: %w", line, err)
		}
		if m.Name == "" || !(m.RatedPowerW > 0) {
			return nil, fmt.Errorf("catalogue line %d: model %q needs a name and a rated power > 0", line, m.Name)
		}
		key := NormalizeModel(m.Name)
		c.byKey[key] = append(c.byKey[key], len(c.models))
		c.models = append(c.models, m)
	}
	for _, idx := range c.byKey {
		sort.SliceStable(idx, func(a, b int) bool {
			ma, mb := c.models[idx[a]], c.models[idx[b]]
			return ma.Year*12+ma.Month > mb.Year*12+mb.Month
		})
	}
	return c, nil
}

// NormalizeModel returns the lookup key of a model name: lower case, with
// spaces, tabs, hyphens, underscores, slashes and parentheses
// removed, so "antminer  s19j-pro" and "Antminer S19j Pro" share one key.
func NormalizeModel(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range strings.ToLower(name) {
		switch r {
		case ' ', '\t', '-', '_', '(', ')', '/':
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Lookup returns the catalogue model with the given name, the most recently
// released one if the name has several variants.
func (c *Catalogue) Lookup(name string) (Model, bool) {
	idx := c.byKey[NormalizeModel(name)]
	if len(idx) == 0 {
		return Model{}, false
	}
	return c.models[idx[0]], true
}

// Variants returns every catalogue model with the given name, newest first.
func (c *Catalogue) Variants(name string) []Model {
	idx := c.byKey[NormalizeModel(name)]
	out := make([]Model, len(idx))
	for i, j := range idx {
		out[i] = c.models[j]
	}
	return out
}

// Models returns a copy of every model in catalogue order.
func (c *Catalogue) Models() []Model { return append([]Model(nil), c.models...) }

// powerRange is the span of catalogue rated powers of one model name.
type powerRange struct {
	known      bool
	minW, maxW float64 // over all variants
	catalogueW float64 // newest variant
	name       string  // catalogue spelling
}

func (c *Catalogue) powerRange(name string) powerRange {
	idx := c.byKey[NormalizeModel(name)]
	if len(idx) == 0 {
		return powerRange{}
	}
	pr := powerRange{known: true, catalogueW: c.models[idx[0]].RatedPowerW, name: c.models[idx[0]].Name}
	pr.minW, pr.maxW = pr.catalogueW, pr.catalogueW
	for _, j := range idx[1:] {
		pr.minW = min(pr.minW, c.models[j].RatedPowerW)
		pr.maxW = max(pr.maxW, c.models[j].RatedPowerW)
	}
	return pr
}
