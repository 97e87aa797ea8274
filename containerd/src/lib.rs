//! berth-containerd: see ARCHITECTURE.md.
