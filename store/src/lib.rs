//! berth-store: see ARCHITECTURE.md.
