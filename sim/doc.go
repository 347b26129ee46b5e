// Package sim makes realistic national-grid scenarios for testing rigwatch
// detection: a registry of licences, mining sites and rigs, a grid of feeders
// and meters whose readings follow real household load shapes and plausible
// commercial, social, industrial and mining profiles, marketplace purchases,
// and hidden incidents of every alert kind with their ground truth. Score
// compares a detector's alerts with that truth.
//
// Everything is deterministic from Config.Seed: ReadingsAt(step) depends on
// the seed and the step alone, so a live demo can stream step by step and get
// exactly the data WriteDir puts in files.
package sim

//go:generate go run gen_households.go -in ../../shared/data/households-sgsc50.csv.gz -out data/households.bin.gz
