//! Operations: logging now; metrics, health and leader election as they land.

pub mod logging;
