package detect

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
)

func TestZZDebug(t *testing.T) {
	seed, _ := strconv.Atoi(os.Getenv("ZSEED"))
	feeders, days := 40, 14
	if v := os.Getenv("ZFEEDERS"); v != "" {
		feeders, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("ZDAYS"); v != "" {
		days, _ = strconv.Atoi(v)
	}
	cfg := sim.Config{Seed: int64(seed), Feeders: feeders, Days: days}
	if os.Getenv("ZCLEAN") != "" {
		cfg.Incidents = []string{}
	}
	w := newWorld(t, cfg)
	as := w.evaluate(t, w.engine(t), w.s.Start(), w.s.End())
	kind := os.Getenv("ZKIND")
	for _, tr := range w.s.Truth() {
		if kind == "" || tr.Kind == kind {
			fmt.Printf("TRUTH %s %s %s %s start=%s pat=%s %s rel=%d\n", tr.Kind, tr.EntityType, tr.EntityID, tr.MeterID, tr.Start.Format("01-02T15"), tr.Pattern, tr.Detail, len(tr.Related))
		}
	}
	n := 0
	for _, a := range as {
		if kind == "" || a.Kind == kind {
			n++
			if n > 60 {
				continue
			}
			fmt.Printf("ALERT %s %s %s det=%s ws=%s ev=%v\n", a.Kind, a.EntityType, a.EntityID, a.DetectedAt.Format("01-02T15"), a.WindowStart.Format("01-02T15"), a.Evidence["rule"])
		}
	}
	_ = schemas.KindUnregisteredLoad
	report(t, w, as)
}
