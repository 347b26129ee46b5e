package sim

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// households.bin.gz is made by gen_households.go from the shared SGSC file.
//
//go:embed data/households.bin.gz
var householdsGz []byte

//go:embed data/asic-models.csv
var modelsCSV []byte

// households holds real half-hourly household use, watt-hours per half hour,
// hhDays days per household starting on a Monday.
type households struct {
	ids  []uint32
	days int
	wh   [][]uint16 // [household][day*48+slot]
}

var (
	hhOnce sync.Once
	hhData *households
	hhErr  error
)

func loadHouseholds() (*households, error) {
	hhOnce.Do(func() { hhData, hhErr = decodeHouseholds(householdsGz) })
	return hhData, hhErr
}

func decodeHouseholds(b []byte) (*households, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("cannot open embedded household data: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("cannot read embedded household data: %w", err)
	}
	if len(raw) < 8 {
		return nil, fmt.Errorf("embedded household data too short")
	}
	n := int(binary.LittleEndian.Uint32(raw))
	days := int(binary.LittleEndian.Uint32(raw[4:]))
	per := 4 + days*48*2
	if days%7 != 0 || len(raw) != 8+n*per {
		return nil, fmt.Errorf("embedded household data has a bad size")
	}
	h := &households{days: days, ids: make([]uint32, n), wh: make([][]uint16, n)}
	for i := 0; i < n; i++ {
		p := raw[8+i*per:]
		h.ids[i] = binary.LittleEndian.Uint32(p)
		v := make([]uint16, days*48)
		for j := range v {
			v[j] = binary.LittleEndian.Uint16(p[4+2*j:])
		}
		h.wh[i] = v
	}
	return h, nil
}

// asicModel is one machine of the shared catalogue.
type asicModel struct {
	Maker, Name string
	HashTHs     float64
	PowerW      float64
	Year        int
}

var (
	modelsOnce sync.Once
	modelsAll  []asicModel
	modelsErr  error
)

func loadModels() ([]asicModel, error) {
	modelsOnce.Do(func() {
		recs, err := csv.NewReader(bytes.NewReader(modelsCSV)).ReadAll()
		if err != nil {
			modelsErr = fmt.Errorf("cannot read embedded ASIC models: %w", err)
			return
		}
		for _, r := range recs[1:] {
			h, err1 := strconv.ParseFloat(r[2], 64)
			p, err2 := strconv.ParseFloat(r[3], 64)
			y, err3 := strconv.Atoi(r[4])
			if err1 != nil || err2 != nil || err3 != nil {
				modelsErr = fmt.Errorf("bad ASIC model row %v", r)
				return
			}
			modelsAll = append(modelsAll, asicModel{Maker: r[0], Name: r[1], HashTHs: h, PowerW: p, Year: y})
		}
	})
	return modelsAll, modelsErr
}

// fleetModels returns the models simulated sites run, with weights: the
// modern 3-3.5 kW machines dominate, as in Kazakh mining since 2021.
func fleetModels() ([]asicModel, []float64, error) {
	all, err := loadModels()
	if err != nil {
		return nil, nil, err
	}
	weights := map[string]float64{
		"Antminer S19j Pro": 30, "Antminer S19 Pro": 20, "Antminer S19": 15, "Antminer S19 XP": 12,
		"Antminer S21": 8, "Whatsminer M30S++": 6, "Whatsminer M30S+": 4, "Whatsminer M30S": 3, "AvalonMiner 1246": 2,
	}
	var ms []asicModel
	var ws []float64
	for _, m := range all {
		if w, ok := weights[m.Name]; ok {
			ms = append(ms, m)
			ws = append(ws, w)
		}
	}
	if len(ms) < 4 {
		return nil, nil, fmt.Errorf("embedded ASIC models lack the modern fleet")
	}
	return ms, ws, nil
}
