package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Local is Kazakhstan's single time zone since 2024, UTC+5: settlement
// days, local hours of day and the simulator's clock follow it. It is the
// one definition of the zone; everything else refers to it.
var Local = time.FixedZone("UTC+5", 5*3600)

// AlertID returns the stable id of a finding: the first 128 bits, in hex,
// of the SHA-256 of its parts (kind, rule or entity, and whatever tells the
// finding's episodes apart), each part ended by a unit separator so that
// parts never run together. The same finding on the same data always gets
// the same id (the contract's alert_id), whichever rule package raised it.
func AlertID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0x1f})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
