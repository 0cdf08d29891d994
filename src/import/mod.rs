//! `benchkeep import`: other tools' result files and folders into the store, one run per
//! benchmark inside a file, idempotent by the source file's content hash.
