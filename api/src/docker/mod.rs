//! Docker wire formats: models, conversions to and from berth's own types,
//! stream framing, request parsing. Pure functions, unit-tested against the
//! fixtures recorded from a real dockerd.
