//! projections: not built yet.
