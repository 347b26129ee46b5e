package store

import (
	"context"
	"fmt"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

const lossModelCols = "feeder_id, day, c_kwh, a, b_per_kwh, share, fitted_share, allowance, source, sigma_kwh, hours, typical_kwh, version"

// WriteLossModels stores the detector's loss models; a model of the same
// feeder and day replaces the earlier one.
func (s *Store) WriteLossModels(ctx context.Context, ms []schemas.LossModel) error {
	if len(ms) == 0 {
		return nil
	}
	v := nextVersion(0)
	return s.insert(ctx, "loss_models", lossModelCols, len(ms), func(i int) []any {
		m := &ms[i]
		return []any{m.FeederID, m.Day.UTC(), m.C, m.A, m.B, m.Share, m.FitShare, m.Allow, m.Source, m.Sigma, uint32(m.Hours), m.TypicalKWh, v}
	})
}

// LossModelsAt returns, for each of the given feeders (nil: every feeder),
// the detector's latest model judged for a day that starts at or before t.
func (s *Store) LossModelsAt(ctx context.Context, feederIDs []string, t time.Time) (map[string]schemas.LossModel, error) {
	out := map[string]schemas.LossModel{}
	if feederIDs != nil && len(feederIDs) == 0 {
		return out, nil
	}
	where := "day <= ?"
	args := []any{t.UTC()}
	if feederIDs != nil {
		where += " AND feeder_id IN (" + placeholders(len(feederIDs)) + ")"
		args = append(args, anyStrings(feederIDs)...)
	}
	// The latest day per feeder, at that day's latest version.
	q := "SELECT feeder_id, argMax(day, (day, version)), argMax(c_kwh, (day, version)), argMax(a, (day, version)), " +
		"argMax(b_per_kwh, (day, version)), argMax(share, (day, version)), argMax(fitted_share, (day, version)), " +
		"argMax(allowance, (day, version)), argMax(source, (day, version)), argMax(sigma_kwh, (day, version)), " +
		"argMax(hours, (day, version)), argMax(typical_kwh, (day, version)) FROM " + s.db + ".loss_models WHERE " + where + " GROUP BY feeder_id"
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read loss models: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m schemas.LossModel
		var hours uint32
		if err := rows.Scan(&m.FeederID, &m.Day, &m.C, &m.A, &m.B, &m.Share, &m.FitShare, &m.Allow, &m.Source, &m.Sigma, &hours, &m.TypicalKWh); err != nil {
			return nil, err
		}
		m.Hours, m.Day = int(hours), m.Day.UTC()
		out[m.FeederID] = m
	}
	return out, rows.Err()
}
