//! `benchkeep sweep`: many runs of one plan under a rising load, each a normal run in the
//! store linked by `sweep.id`, resumable point by point.
