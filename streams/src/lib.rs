//! streams: not built yet.
