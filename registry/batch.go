package registry

import (
	"errors"

	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

// ApplyBatch applies the licences, meters and rigs of a stored ingest batch,
// in that order; the batch's other records are not the registry's. Its
// error joins those of the three Apply calls: records the Index refuses are
// skipped, the rest are applied.
func (ix *Index) ApplyBatch(b *schemas.Batch) error {
	var errs []error
	if len(b.Licenses) > 0 {
		errs = append(errs, ix.ApplyLicenses(b.Licenses))
	}
	if len(b.Meters) > 0 {
		errs = append(errs, ix.ApplyMeters(b.Meters))
	}
	if len(b.Rigs) > 0 {
		errs = append(errs, ix.ApplyRigs(b.Rigs))
	}
	return errors.Join(errs...)
}

// Hook returns a func with the signature of ingest.BatchHook that keeps ix
// up to date with every batch ingest has stored. A batch it cannot fully
// apply is logged, not fatal: ingest validated the records already, and
// the stored copy is the one the next LoadRegistry reads.
func (ix *Index) Hook() func(b *schemas.Batch) {
	return func(b *schemas.Batch) {
		if err := ix.ApplyBatch(b); err != nil {
			ix.log.Warn("cannot apply a stored batch to the registry", zap.Error(err))
		}
	}
}
