//! Shared by the scale benchmark (`benches/scale.rs`), the crash-chaos run
//! (`benches/chaos.rs`) and its small CI variant (`tests/chaos.rs`): a control plane, the
//! VPC API emulator with a benchmark topology, the controller as a separate process, object
//! creation and tracking, and the invariants checked at the end of a chaos run.
#![allow(dead_code)]

pub mod chaos;
pub mod cluster;
pub mod controller;
pub mod invariants;
pub mod tracker;
pub mod world;

use std::time::Duration;

/// Formats a duration as seconds with one decimal.
pub fn secs(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}
