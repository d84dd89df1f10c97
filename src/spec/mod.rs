//! Experiment specs: TOML parsing, validation, expansion into runs, and run identity.
