//! Operations: logging, metrics, health, and what status reports for people on call.

pub mod events;
pub mod health;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod report;
