package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rigwatch/rigwatch/investigate"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

func newRegistryCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Investigator look-ups in the equipment registry",
		Args:  exactArgs(0, "a subcommand: stats, rig or site"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("%s needs a subcommand: stats, rig or site", cmd.CommandPath())
		},
	}
	cmd.AddCommand(newRegistryStatsCmd(g), newRegistryRigCmd(g), newRegistrySiteCmd(g), newRegistryUnknownMetersCmd(g))
	return cmd
}

// atFlag is the instant a registry command reports on: --at, or the
// registry as it stands (investigate.RegistryNow: now, or the newest stored record
// when event time runs ahead of the clock).
type atFlag struct{ s string }

func (a *atFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.s, "at", "", "report the registry as it stood at this RFC 3339 time (default: as it stands now)")
}

// time returns --at, or the zero time for "as it stands", which
// loadRegistry resolves.
func (a *atFlag) time() (time.Time, error) {
	if a.s == "" {
		return time.Time{}, nil
	}
	t, err := schemas.ParseTime("at", a.s)
	if err != nil {
		return time.Time{}, usagef("--at %q: want an RFC 3339 time like 2025-10-01T00:00:00Z", a.s)
	}
	return t.UTC(), nil
}

// loadRegistry opens storage (no broker) and rebuilds from it the part of
// the registry scope names (all of it for the zero Scope). A zero *at
// becomes the instant the registry stands at.
func loadRegistry(ctx context.Context, g *globalFlags, scope store.Scope, at *time.Time) (*registry.Index, error) {
	rt, err := openRuntime(ctx, g, false)
	if err != nil {
		return nil, err
	}
	defer rt.close()
	if at.IsZero() {
		if *at, err = investigate.RegistryNow(ctx, rt.store, time.Now()); err != nil {
			return nil, err
		}
	}
	return rt.loadRegistryScope(ctx, scope)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRegistryStatsCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	var at atFlag
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Operators and licences by status; active rigs and registered MW in total, by oblast, operator and model",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := at.time()
			if err != nil {
				return err
			}
			ix, err := loadRegistry(cmd.Context(), g, store.Scope{}, &t)
			if err != nil {
				return err
			}
			st := ix.Stats(t)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			printStats(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	at.register(cmd)
	return cmd
}

func printStats(w io.Writer, st registry.Stats) {
	fmt.Fprintf(w, "registry at %s\n", st.At.Format(time.RFC3339))
	statuses := make([]string, 0, len(st.Licenses))
	for s := range st.Licenses {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	parts := make([]string, len(statuses))
	for i, s := range statuses {
		parts[i] = fmt.Sprintf("%s %s", num(float64(st.Licenses[s]), 0), s)
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Fprintf(w, "operators:    %s (%s with a licence in force)\n", num(float64(st.Operators), 0), num(float64(st.OperatorsLicensed), 0))
	fmt.Fprintf(w, "licences:     %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(w, "active rigs:  %s at %s sites\n", num(float64(st.ActiveRigs), 0), num(float64(st.Sites), 0))
	fmt.Fprintf(w, "registered:   %s MW\n", num(st.RegisteredMW, 3))
	for _, sec := range []struct {
		title string
		gs    []registry.Group
	}{{"oblast", st.ByOblast}, {"operator", st.ByOperator}, {"model", st.ByModel}} {
		fmt.Fprintf(w, "\nby %s\n", sec.title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%s\trigs\tMW\t\n", sec.title)
		for _, gr := range sec.gs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", gr.Key, num(float64(gr.Rigs), 0), numFixed(gr.MW, 3))
		}
		tw.Flush()
	}
}

// rigVersion is one stored version of a rig as the look-ups show it; unlike
// schemas.Rig it says whether the version is a tombstone.
type rigVersion struct {
	UpdatedAt   time.Time `json:"updated_at"`
	RigID       string    `json:"rig_id"`
	Serial      string    `json:"serial,omitempty"`
	Model       string    `json:"model,omitempty"`
	RatedPowerW float64   `json:"rated_power_w,omitempty"`
	OperatorID  string    `json:"operator_id,omitempty"`
	LicenseID   string    `json:"license_id,omitempty"`
	SiteID      string    `json:"site_id,omitempty"`
	Status      string    `json:"status"`
	Deleted     bool      `json:"deleted,omitempty"`
}

func rigVersions(rs []schemas.Rig) []rigVersion {
	out := make([]rigVersion, len(rs))
	for i, r := range rs {
		out[i] = rigVersion{UpdatedAt: r.UpdatedAt, RigID: r.RigID, Serial: r.Serial, Model: r.Model, RatedPowerW: r.RatedPowerW,
			OperatorID: r.OperatorID, LicenseID: r.LicenseID, SiteID: r.SiteID, Status: r.Status, Deleted: r.Deleted}
		if r.Deleted {
			out[i].Status = "deleted"
		}
	}
	return out
}

func printRigVersions(w io.Writer, vs []rigVersion) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "updated_at\trig_id\tstatus\tsite\tlicence\toperator\trated_w\tmodel\tserial")
	for _, v := range vs {
		if v.Deleted {
			fmt.Fprintf(tw, "%s\t%s\tdeleted\t\t\t\t\t\t\n", v.UpdatedAt.Format(time.RFC3339), v.RigID)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.UpdatedAt.Format(time.RFC3339), v.RigID, v.Status, v.SiteID,
			v.LicenseID, v.OperatorID, num(v.RatedPowerW, 1), v.Model, v.Serial)
	}
	tw.Flush()
}

// licenceState is a licence as it stood at an instant, with whether it was
// in force then.
type licenceState struct {
	schemas.License
	InForce bool `json:"in_force"`
}

// rigReport answers `registry rig`.
type rigReport struct {
	Query string    `json:"query"`
	At    time.Time `json:"at"`
	// Current holds, for every rig the query matched, its state at At
	// (rigs deleted by then are left out).
	Current  []rigVersion   `json:"current"`
	Licences []licenceState `json:"licences"`
	History  []rigVersion   `json:"history"`
}

func newRegistryRigCmd(g *globalFlags) *cobra.Command {
	return newLookupCmd(g, "rig SERIAL|RIG_ID", "A rig's every registered version: status, site and licence over time",
		"one serial or rig id", "no rig with id or serial %q in the registry", store.RigScope, rigLookup, printRigReport)
}

// newLookupCmd builds an investigator's look-up of one registry entity:
// load the registry, find the argument as it stood --at a time, print the
// report as a table or, with --json, as JSON.
func newLookupCmd[R any](g *globalFlags, use, short, what, notFound string, scope func(string) store.Scope,
	lookup func(*registry.Index, string, time.Time) (R, bool), print func(io.Writer, R)) *cobra.Command {
	var asJSON bool
	var at atFlag
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1, what),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := at.time()
			if err != nil {
				return err
			}
			// Only the records of what is looked up: a national registry
			// loads in seconds, one site's part in milliseconds.
			ix, err := loadRegistry(cmd.Context(), g, scope(args[0]), &t)
			if err != nil {
				return err
			}
			rep, ok := lookup(ix, args[0], t)
			if !ok {
				return fmt.Errorf(notFound, args[0])
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			print(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	at.register(cmd)
	return cmd
}

// rigLookup finds q as a rig id, else as a serial (which may have been
// carried by several rigs).
func rigLookup(ix *registry.Index, q string, t time.Time) (rigReport, bool) {
	rep := rigReport{Query: q, At: t}
	hist := ix.RigHistory(q)
	ids := []string{q}
	if len(hist) == 0 {
		hist = ix.RigBySerial(q)
		ids = ids[:0]
		for _, r := range hist {
			if !slices.Contains(ids, r.RigID) {
				ids = append(ids, r.RigID)
			}
		}
	}
	if len(hist) == 0 {
		return rep, false
	}
	rep.History = rigVersions(hist)
	var lics []string
	for _, id := range ids {
		if r, ok := ix.RigAt(id, t); ok {
			rep.Current = append(rep.Current, rigVersions([]schemas.Rig{r})...)
			if !slices.Contains(lics, r.LicenseID) {
				lics = append(lics, r.LicenseID)
			}
		}
	}
	rep.Licences = licenceStates(ix, lics, t)
	return rep, true
}

func licenceStates(ix *registry.Index, ids []string, t time.Time) []licenceState {
	out := []licenceState{}
	slices.Sort(ids)
	for _, id := range ids {
		if l, ok := ix.LicenseAt(id, t); ok {
			out = append(out, licenceState{License: l, InForce: ix.LicenseValid(id, t)})
		} else {
			out = append(out, licenceState{License: schemas.License{LicenseID: id, Status: "not registered"}})
		}
	}
	return out
}

func printLicences(w io.Writer, ls []licenceState) {
	for _, l := range ls {
		if l.ValidFrom.IsZero() && l.UpdatedAt.IsZero() {
			fmt.Fprintf(w, "licence %s: not in the registry at this time\n", l.LicenseID)
			continue
		}
		force := "in force"
		if !l.InForce {
			force = "NOT in force"
		}
		capKW := "no licensed capacity recorded"
		if l.LicensedCapacityKW != nil {
			capKW = "licensed for " + num(*l.LicensedCapacityKW, 3) + " kW"
		}
		fmt.Fprintf(w, "licence %s of %s: %s, %s (valid %s to %s), %s\n", l.LicenseID, l.OperatorID, l.Status, force,
			l.ValidFrom.Format(time.DateOnly), l.ValidTo.Format(time.DateOnly), capKW)
	}
}

func printRigReport(w io.Writer, rep rigReport) {
	fmt.Fprintf(w, "rig %s at %s\n", rep.Query, rep.At.Format(time.RFC3339))
	if len(rep.Current) == 0 {
		fmt.Fprintln(w, "not registered at this time (deleted, or not yet registered)")
	}
	for _, c := range rep.Current {
		fmt.Fprintf(w, "%s: %s at %s under licence %s of %s, %s %s W, serial %s\n", c.RigID, c.Status, c.SiteID, c.LicenseID,
			c.OperatorID, c.Model, num(c.RatedPowerW, 1), c.Serial)
	}
	printLicences(w, rep.Licences)
	fmt.Fprintf(w, "\nhistory (%d versions)\n", len(rep.History))
	printRigVersions(w, rep.History)
}

// siteReport answers `registry site`.
type siteReport struct {
	SiteID     string          `json:"site_id"`
	At         time.Time       `json:"at"`
	Oblast     string          `json:"oblast,omitempty"`
	ActiveRigs int             `json:"active_rigs"`
	CapacityW  float64         `json:"capacity_w"`
	Capacity   []registry.Step `json:"capacity_changes"`
	Meters     []schemas.Meter `json:"meters"`
	Licences   []licenceState  `json:"licences"`
	History    []rigVersion    `json:"history"`
}

func newRegistrySiteCmd(g *globalFlags) *cobra.Command {
	return newLookupCmd(g, "site SITE_ID", "A site's registered capacity over time, its meters, licences and every rig version",
		"one site id", "no site %q in the registry", store.SiteScope, siteLookup, printSiteReport)
}

func siteLookup(ix *registry.Index, site string, t time.Time) (siteReport, bool) {
	rep := siteReport{SiteID: site, At: t}
	hist := ix.SiteHistory(site)
	rep.Meters = ix.SiteMeters(site, t)
	if len(hist) == 0 && len(rep.Meters) == 0 {
		if _, ok := slices.BinarySearch(ix.Sites(), site); !ok {
			return rep, false
		}
	}
	if rep.Meters == nil {
		rep.Meters = []schemas.Meter{}
	}
	rep.Oblast, _ = ix.SiteOblast(site, t)
	f := ix.SiteFleet(site, t)
	rep.ActiveRigs, rep.CapacityW = f.Machines, f.TotalW
	rep.History = rigVersions(hist)
	rep.Capacity = []registry.Step{}
	if len(hist) > 0 && !hist[0].UpdatedAt.After(t) {
		rep.Capacity = ix.CapacityChanges(site, hist[0].UpdatedAt, t.Add(time.Second))
	}
	var lics []string
	for _, r := range hist {
		if r.SiteID != site || slices.Contains(lics, r.LicenseID) {
			continue
		}
		if cur, ok := ix.RigAt(r.RigID, t); ok && cur.SiteID == site && cur.LicenseID == r.LicenseID {
			lics = append(lics, r.LicenseID)
		}
	}
	rep.Licences = licenceStates(ix, lics, t)
	return rep, true
}

func printSiteReport(w io.Writer, rep siteReport) {
	oblast := rep.Oblast
	if oblast == "" {
		oblast = "oblast unknown"
	}
	fmt.Fprintf(w, "site %s (%s) at %s: %s active rigs, %s kW registered\n", rep.SiteID, oblast, rep.At.Format(time.RFC3339),
		num(float64(rep.ActiveRigs), 0), num(rep.CapacityW/1000, 3))
	printLicences(w, rep.Licences)
	fmt.Fprintf(w, "\nmeters (%d)\n", len(rep.Meters))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "meter_id\tfeeder_id\trole\tclass\toblast\tsince")
	for _, m := range rep.Meters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.MeterID, m.FeederID, m.Role, m.Class, m.Oblast, m.UpdatedAt.Format(time.RFC3339))
	}
	tw.Flush()
	fmt.Fprintf(w, "\ncapacity over time (%d changes)\n", len(rep.Capacity))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "from\trigs\tkW\t")
	for _, s := range rep.Capacity {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", s.At.Format(time.RFC3339), num(float64(s.Rigs), 0), numFixed(s.CapacityW/1000, 3))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nrig history (%d versions)\n", len(rep.History))
	printRigVersions(w, rep.History)
}

// num formats v with thousands separators and at most decimals fraction
// digits, trailing zeros dropped: 3250 -> "3,250", 6.3180 -> "6.318".
func num(v float64, decimals int) string {
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return group(s)
}

// numFixed formats v with thousands separators and exactly decimals
// fraction digits, for table columns that must line up.
func numFixed(v float64, decimals int) string {
	return group(strconv.FormatFloat(v, 'f', decimals, 64))
}

// group puts thousands separators into a formatted decimal number.
func group(s string) string {
	if s == "-0" {
		s = "0"
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}
