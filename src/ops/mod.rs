//! Operations: logging, metrics, health.

pub mod events;
pub mod health;
pub mod leader;
pub mod logging;
pub mod metrics;
