//! Operations: logging, metrics, health.

pub mod health;
pub mod logging;
pub mod metrics;
