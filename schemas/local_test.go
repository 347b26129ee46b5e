package schemas

import (
	"testing"
	"time"
)

func TestLocal(t *testing.T) {
	if _, off := time.Date(2025, 7, 1, 0, 0, 0, 0, Local).Zone(); off != 5*3600 {
		t.Errorf("Local is UTC%+d s, want UTC+5", off)
	}
}

func TestAlertID(t *testing.T) {
	// The ids stored alerts carry: a change here would raise every open
	// finding again under a new id.
	if got, want := AlertID("oversized_purchase", "TX-1"), "70f0ec1cf8ddb63619a57dbb2762b080"; got != want {
		t.Errorf("AlertID = %s, want %s", got, want)
	}
	if AlertID("x", "y") == AlertID("xy") || AlertID("x", "y") == AlertID("y", "x") {
		t.Error("AlertID parts run together or commute")
	}
	if AlertID("a", "b") != AlertID("a", "b") {
		t.Error("AlertID is not deterministic")
	}
}
