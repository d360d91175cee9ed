//! When to look again: the shared poll tick, jittered resyncs, the per-object resync period.

use std::time::Duration;

use kube::ResourceExt;

use crate::api::{BgpPeer, RESYNC_ANNOTATION};

use super::context::Context;

/// The wait until the next poll tick: wall-clock multiples of the poll interval, shared by
/// every object in motion, so that they look at the same moment and one fresh group listing
/// answers all of them (instead of listings taken moments apart, each too early for some).
/// At least a tenth of the interval, so a reconcile just before a tick waits for the next.
pub fn next_tick(poll: Duration) -> Duration {
    let period = poll.as_millis().max(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut wait = period - now % period;
    if wait < period / 10 {
        wait += period;
    }
    Duration::from_millis(u64::try_from(wait).unwrap_or(u64::MAX))
}

/// Resync with ±10 % jitter so that peers created together do not resync together.
pub fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.9 + rand::random::<f64>() * 0.2)
}

/// The resync period of one object: the annotation if valid, else the operator's.
pub fn resync_period(obj: &BgpPeer, ctx: &Context) -> Duration {
    obj.annotations()
        .get(RESYNC_ANNOTATION)
        .and_then(|v| crate::duration::parse(v).ok())
        .filter(|d| *d >= Duration::from_secs(10))
        .unwrap_or(ctx.config.resync_period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_shared_and_never_immediate() {
        let poll = Duration::from_millis(5000);
        for _ in 0..50 {
            let wait = next_tick(poll);
            assert!(wait >= Duration::from_millis(500) && wait <= Duration::from_millis(5500));
        }
        // Two objects asking moments apart land on the same tick.
        let a = std::time::SystemTime::now() + next_tick(poll);
        let b = std::time::SystemTime::now() + next_tick(poll);
        let gap = b.duration_since(a).unwrap_or_else(|e| e.duration());
        assert!(
            gap < Duration::from_millis(100) || gap > Duration::from_millis(4900),
            "{gap:?}"
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&d), "{d}");
        }
    }
}
