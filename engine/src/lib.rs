//! berth-engine: see ARCHITECTURE.md.
