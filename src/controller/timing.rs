//! When to look again: the shared poll tick, jittered resyncs, the per-object resync period,
//! and the pace of objects in motion ([`Pace`]): while few are in motion, the first look after
//! a create comes when the peer is likely Available (learned from recent Pending durations,
//! [`PendingEstimate`]) and follow-ups come quickly; when many are, every look lands on the
//! shared tick so that one listing answers many of them ([`next_look`], pure).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use kube::ResourceExt;

use crate::api::{BgpPeer, RESYNC_ANNOTATION};

use super::context::Context;

/// Timing rules of the plans of every kind (from the controller's flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long a peer whose ID the operator recorded but has never seen may stay invisible
    /// before its absence means "deleted outside Kubernetes".
    pub visibility_grace: Duration,
    /// How long a transition (Pending, Modifying, Deleting, unknown status) may last before
    /// it is reported as stuck.
    pub transition_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            visibility_grace: Duration::from_secs(120),
            transition_timeout: Duration::from_secs(900),
        }
    }
}

/// The wait until the next poll tick: wall-clock multiples of the poll interval, shared by
/// every object in motion, so that they look at the same moment and one fresh group listing
/// answers all of them (instead of listings taken moments apart, each too early for some).
/// At least a tenth of the interval, so a reconcile just before a tick waits for the next.
pub fn next_tick(poll: Duration) -> Duration {
    tick_after(wall_ms(), poll)
}

/// Milliseconds since the Unix epoch (the clock the shared tick is aligned on).
fn wall_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// [`next_tick`] at wall-clock time `now_ms` (pure).
fn tick_after(now_ms: u128, poll: Duration) -> Duration {
    let period = poll.as_millis().max(1);
    let mut wait = period - now_ms % period;
    if wait < period / 10 {
        wait += period;
    }
    Duration::from_millis(u64::try_from(wait).unwrap_or(u64::MAX))
}

/// Added to the learned Deleting duration (at most a tenth of the poll interval) for the first
/// look after a delete: a look just before the removal would fetch a listing that the
/// removal makes inconsistent, a look just after costs only the margin. 500 ms until the
/// removal time was learned across objects (session 16): that estimate already sits at most
/// [`ABOVE_NOT_YET`] above the oldest peer still listed, and the last 250 ms were a quarter
/// of the tail of a mass deletion of N = 100 (the last look 0.75 s after the removal).
const DELETION_MARGIN: Duration = Duration::from_millis(250);
/// The fallback look of an object in motion that waits for a listing to wake it
/// ([`Pace::park`]): shorter than `observe::decide::MAX_DEFER`, which bounds the deferral.
/// Two poll intervals: at N = 1,000 (c6ec0c3, 30 s) one object of 1,000 was not woken and
/// waited the whole fallback (999 gone at 43.1 s, the last at 65.0 s).
pub const PARKED_FALLBACK: Duration = Duration::from_secs(10);
/// Pending durations remembered by [`PendingEstimate`].
const PENDING_SAMPLES: usize = 9;
/// The shortest wait of a look of an object in motion.
const MIN_LOOK: Duration = Duration::from_millis(100);

/// How long a created peer typically stays Pending (or invisible): the median of the last
/// [`PENDING_SAMPLES`] observed durations, so old ones decay out and an odd one does not
/// move it. Each sample is the middle of what was seen: the last look that still found the
/// peer Pending and the first that found it Available (a look that already finds it Available
/// only bounds it from above, and its middle pulls the estimate down until looks bracket the
/// real duration). Bounded to `[MIN_LOOK, 3 × poll]`.
#[derive(Debug, Clone, Default)]
pub struct PendingEstimate {
    samples: VecDeque<Duration>,
}

impl PendingEstimate {
    /// Records a peer last seen Pending `lo` after its create and first seen Available `hi`
    /// after it.
    pub fn record(&mut self, lo: Duration, hi: Duration) {
        let sample = (lo.min(hi) + hi) / 2;
        if self.samples.len() >= PENDING_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The estimate; with nothing learned yet, half the poll interval.
    pub fn estimate(&self, poll: Duration) -> Duration {
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort();
        let learned = sorted.get(sorted.len() / 2).copied().unwrap_or(poll / 2);
        learned.clamp(MIN_LOOK, (poll * 3).max(MIN_LOOK))
    }
}

/// Looks of created peers remembered by [`ListedAfter`], of each kind.
const LISTED_SAMPLES: usize = 32;
/// How far above the oldest "not yet" sample [`ListedAfter`] puts its estimate at most.
const ABOVE_NOT_YET: Duration = Duration::from_millis(250);
/// Added to [`ListedAfter`]'s estimate for the listing that must show a region's newest peer
/// (at most a tenth of the poll interval): a listing a little late costs the margin, one a
/// little early a second listing of the region.
const LISTING_MARGIN: Duration = Duration::from_millis(300);

/// How long after its create a peer is listed Available, learned across objects: every look
/// at a created peer is a sample, "not yet" (Pending or not listed) at its age or
/// "Available" at its age, and the estimate is the age that best separates the two (fewest
/// samples on the wrong side; the later such age when several tie): the middle of the gap
/// between them, at most [`ABOVE_NOT_YET`] above its lower side. Unlike [`PendingEstimate`]'s per-object brackets, it needs no object to be
/// looked at twice in quick succession: during a mass create, objects wait for shared
/// listings many seconds apart, so their brackets are wide, but each listing shows peers of
/// every age, some not yet listed and some Available, which bracket the duration from both
/// sides.
///
/// Each kind keeps its own [`LISTED_SAMPLES`] latest samples, so that a flood of one kind (a
/// listing at the end of a mass create shows every new peer Available) never pushes the other
/// out.
#[derive(Debug, Clone, Default)]
pub struct ListedAfter {
    /// Ages at looks that found the peer not yet Available.
    not_yet: VecDeque<Duration>,
    /// Ages at looks that found it Available.
    available: VecDeque<Duration>,
}

impl ListedAfter {
    /// A look at a peer `age` after its create found it `available` (or not yet).
    pub fn record(&mut self, age: Duration, available: bool) {
        let samples = if available {
            &mut self.available
        } else {
            &mut self.not_yet
        };
        if samples.len() >= LISTED_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(age);
    }

    /// Like [`ListedAfter::estimate`], and with only "done" samples, half the youngest of
    /// them (bounded the same way): every look so far came after the effect, so they bound
    /// the duration from above only, and a look at the estimate, however late, would only
    /// teach more upper bounds (an estimate inflated by looks that waited for a listing would
    /// stay inflated). A look at half the youngest either finds the effect still to come (a
    /// lower bound: both kinds from then on) or halves the estimate again.
    pub fn estimate_probing(&self, poll: Duration) -> Option<Duration> {
        if self.not_yet.is_empty() {
            let youngest = self.available.iter().min()?;
            return Some((*youngest / 2).clamp(MIN_LOOK, poll.saturating_mul(3).max(MIN_LOOK)));
        }
        self.estimate(poll)
    }

    /// The separating age, bounded to `[MIN_LOOK, 3 × poll]`; `None` until a look of each
    /// kind was made.
    pub fn estimate(&self, poll: Duration) -> Option<Duration> {
        if self.not_yet.is_empty() || self.available.is_empty() {
            return None;
        }
        let mut sorted: Vec<(Duration, bool)> = self
            .not_yet
            .iter()
            .map(|a| (*a, false))
            .chain(self.available.iter().map(|a| (*a, true)))
            .collect();
        sorted.sort();
        // A threshold between sorted[i - 1] and sorted[i] misplaces the "Available" samples
        // below it and the "not yet" ones above it.
        let not_yet_total = self.not_yet.len();
        let (mut available_below, mut not_yet_below) = (0usize, 0usize);
        let mut best = (usize::MAX, 0usize);
        for i in 0..=sorted.len() {
            let wrong = available_below + (not_yet_total - not_yet_below);
            if wrong <= best.0 {
                best = (wrong, i);
            }
            if let Some(s) = sorted.get(i) {
                if s.1 {
                    available_below += 1;
                } else {
                    not_yet_below += 1;
                }
            }
        }
        let i = best.1;
        let lo = i.checked_sub(1).and_then(|j| sorted.get(j)).map(|s| s.0);
        let hi = sorted.get(i).map(|s| s.0);
        let at = match (lo, hi) {
            // The middle of the gap, or just above its lower side when the gap is wide: the
            // "Available" samples near it may all be old (objects that waited for a listing),
            // and an estimate a little early only costs a look that teaches a higher bound.
            (Some(lo), Some(hi)) => ((lo + hi) / 2).min(lo + ABOVE_NOT_YET),
            (Some(lo), None) => lo,
            (None, Some(hi)) => hi,
            (None, None) => return None,
        };
        Some(at.clamp(MIN_LOOK, poll.saturating_mul(3).max(MIN_LOOK)))
    }
}

/// A [`ListedAfter`] shared by the pace and the observer: the observer records what each
/// region listing shows of our recent creates (every one of them, not only the objects a
/// listing answers), the pace what each look found.
#[derive(Debug, Default)]
pub struct ListedLearner {
    inner: Mutex<ListedAfter>,
}

impl ListedLearner {
    fn with<R>(&self, f: impl FnOnce(&mut ListedAfter) -> R) -> R {
        let mut state = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    /// A look at a peer `age` after its create found it `available` (or not yet).
    pub fn record(&self, age: Duration, available: bool) {
        self.with(|l| l.record(age, available));
    }

    /// See [`ListedAfter::estimate`].
    pub fn estimate(&self, poll: Duration) -> Option<Duration> {
        self.with(|l| l.estimate(poll))
    }

    /// See [`ListedAfter::estimate_probing`].
    pub fn estimate_probing(&self, poll: Duration) -> Option<Duration> {
        self.with(|l| l.estimate_probing(poll))
    }

    /// Samples held: ("not yet", "done").
    #[cfg(test)]
    pub fn samples(&self) -> (usize, usize) {
        self.with(|l| (l.not_yet.len(), l.available.len()))
    }
}

/// The wait before the next look of an object in motion (pure).
///
/// Quick looks cost a read each, so their pace shrinks as more objects are in motion: the
/// follow-up interval is a tenth of the poll interval per object in motion, which keeps the
/// reads of quick looks at about ten per poll interval in all. Once that interval reaches the
/// poll interval (ten or more in motion), every follow-up goes to the shared tick, where one
/// listing answers many objects.
///
/// The first look after our write comes when its effect is likely listed (`estimate` after
/// it: a create's peer listed Available, a delete's peer gone) however many are in motion:
/// while our writes go on in its region, a look costs no read (the observer defers it until
/// enough objects want the region listing, or, for deletes, until the removals have had their
/// time), and after the last write the first look of its object is the one that fetches the
/// listing that answers them all, as soon as it can show the last write, instead of at the
/// next tick.
///
/// A look that comes past the estimate and still finds the object in motion (`near_miss`:
/// the first such look since its write, within a poll interval of the estimate) is followed
/// up a tenth of the poll interval later, up to [`QUICK_FOLLOW_UP_MAX`] in motion: a learned
/// median is short for half the objects of a mass write, and a miss by a fraction of a second
/// would otherwise wait for the next tick (at N = 100, 18 deleted peers gone 30 ms after their
/// looks were released 4.6 s later). The listing that follow-up fetches answers every object
/// of the region that missed by as little; later looks go to the pace again.
pub fn next_look(
    now_ms: u128,
    poll: Duration,
    in_motion: usize,
    since: Option<(Duration, Write)>,
    estimate: Duration,
    near_miss: bool,
) -> Duration {
    if let Some((elapsed, _)) = since {
        if elapsed < estimate {
            return (estimate - elapsed).max(MIN_LOOK);
        }
        if near_miss && elapsed < estimate + poll && in_motion <= QUICK_FOLLOW_UP_MAX {
            return (poll / 10).max(MIN_LOOK);
        }
    }
    let follow_up = (poll / 10).saturating_mul(u32::try_from(in_motion.max(1)).unwrap_or(u32::MAX));
    if follow_up >= poll {
        return tick_after(now_ms, poll);
    }
    follow_up.max(MIN_LOOK)
}

/// Objects in motion at most for [`next_look`]'s quick follow-up of a near miss. At N = 100
/// it ended a mass delete 4 s sooner (1.88× → 1.16× its floor); at N = 1,000, where each
/// follow-up's fresh listing competed with the groups' confirming listings, it ended it
/// 2.5 s later (1.19× → 1.27×), so many objects in motion keep the shared tick.
pub const QUICK_FOLLOW_UP_MAX: usize = 128;

/// The write an object in motion waits on: its Pending (or invisible) time after a create,
/// its Deleting time after a delete, each learned on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// `CreateBgpPeer` was accepted.
    Create,
    /// `DeleteBgpPeer` was accepted.
    Delete,
}

/// One object in motion.
#[derive(Debug, Clone, Copy)]
struct Motion {
    /// When its create or delete was accepted (learning applies only to those).
    since: Option<(Instant, Write)>,
    /// The last look that found it Pending, not yet visible or still Deleting, after it.
    last_pending: Duration,
    /// When it was last seen in motion (for pruning).
    seen: Instant,
    /// It waits for a listing that will wake it ([`Pace::park`]).
    parked: bool,
    /// It was parked since its write: its settling time includes a deferral, and is not
    /// learned as a Pending or Deleting duration.
    deferred: bool,
    /// When the data of the look being recorded was read (between the two instants), if
    /// known ([`Pace::data_read`]): a look's age is its data's, not its reconcile's.
    data: Option<(Instant, Instant)>,
    /// A look past the estimate already found it in motion since its write: its one quick
    /// follow-up ([`next_look`]'s `near_miss`) was granted ...
    missed: bool,
    /// ... and is due at its next wait.
    follow_up: bool,
}

/// Objects in motion not looked at for this long are forgotten (deleted meanwhile, or in an
/// error backoff: either way they make no looks).
const MOTION_STALE: Duration = Duration::from_secs(60);
/// How often stale objects are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// Objects in motion tracked at most (more are all on the shared tick anyway).
const MAX_MOTION: usize = 4096;

/// The pace of objects in motion, shared by all reconciles: who is in motion, since when, and
/// what Pending and Deleting durations were seen. The decisions are [`next_look`] and
/// [`PendingEstimate`].
#[derive(Debug, Default)]
pub struct Pace {
    inner: Mutex<PaceState>,
    learned: Learned,
}

/// What the pace and the observer learn together, across objects.
#[derive(Debug, Default)]
struct Learned {
    /// How long after its create a peer is listed Available ("done": Available).
    listed: Arc<ListedLearner>,
    /// How long after our accepted delete a peer is gone from listings ("done": gone), from
    /// what each listing and by-ID read shows of our recent deletes (the observer's).
    removed: Arc<ListedLearner>,
}

#[derive(Debug, Default)]
struct PaceState {
    motion: HashMap<String, Motion>,
    pending: PendingEstimate,
    deleting: PendingEstimate,
    pruned: Option<Instant>,
}

impl Pace {
    fn with<R>(&self, f: impl FnOnce(&mut PaceState, &Learned) -> R) -> R {
        let mut state = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state, &self.learned)
    }

    /// What the pace learns from looks of created peers, shared with the observer (which
    /// adds what region listings show).
    pub fn listed(&self) -> Arc<ListedLearner> {
        self.learned.listed.clone()
    }

    /// What the observer learns from listings of our deleted peers (present: not gone yet;
    /// absent from a consistent listing: gone), which [`Pace::deletion_settle`] reads.
    pub fn removed(&self) -> Arc<ListedLearner> {
        self.learned.removed.clone()
    }

    /// The create of `key` was sent: the wait before its first look.
    pub fn created(&self, key: &str, poll: Duration) -> Duration {
        self.wrote(key, poll, Write::Create)
    }

    /// The cloud accepted our delete of `key`'s peer: it counts as in motion until it is
    /// released, and its Deleting time is learned. The wait before its first look is the
    /// one of [`next_look`] (the learned Deleting time while few are in motion).
    pub fn deleted(&self, key: &str, poll: Duration) -> Duration {
        self.wrote(key, poll, Write::Delete)
    }

    fn wrote(&self, key: &str, poll: Duration, write: Write) -> Duration {
        let now = Instant::now();
        self.with(|s, l| {
            s.track(key, now, Some(write));
            s.next(l, key, now, poll)
        })
    }

    /// `key` was seen still in motion (Pending, not yet visible, Modifying, Deleting…): the
    /// wait before its next look.
    pub fn in_motion(&self, key: &str, poll: Duration) -> Duration {
        let now = Instant::now();
        self.with(|s, l| {
            s.track(key, now, None);
            s.looked(l, key, now, poll);
            s.next(l, key, now, poll)
        })
    }

    /// Like [`Pace::in_motion`], for a caller whose wait comes later from [`Pace::not_yet`]
    /// (the cleanup path, through the error policy): the look is recorded, and the quick
    /// follow-up it may earn is kept for that wait.
    pub fn seen_in_motion(&self, key: &str, poll: Duration) {
        let now = Instant::now();
        self.with(|s, l| {
            s.track(key, now, None);
            s.looked(l, key, now, poll);
        });
    }

    /// A look of `key` gave no answer yet: its own new peer was not listed yet (`looked`:
    /// read-after-write lag, which counts as "still Pending" for the estimate), or it waits
    /// for a listing (woken when it lands). An object in motion looks again at its pace —
    /// quickly while few are in motion, at the shared tick when many are — instead of always
    /// at the next tick; one not in motion (a settled object waiting for a listing) at the
    /// shared tick, without being counted as in motion.
    pub fn not_yet(&self, key: &str, poll: Duration, looked: bool) -> Duration {
        let now = Instant::now();
        self.with(|s, l| {
            let Some(m) = s.motion.get_mut(key) else {
                return tick_after(wall_ms(), poll);
            };
            if std::mem::take(&mut m.parked) {
                m.seen = now;
                return PARKED_FALLBACK;
            }
            s.track(key, now, None);
            if looked {
                s.looked(l, key, now, poll);
            }
            s.next(l, key, now, poll)
        })
    }

    /// `key`, in motion, waits for a listing that wakes it when it lands (during a mass
    /// deletion: the one after our last removal in its region, fetched by the first look of
    /// the last peer deleted): its next look of its own ([`Pace::not_yet`]) is only a
    /// fallback, [`PARKED_FALLBACK`] later, instead of at every tick (thousands of deferred
    /// objects would otherwise take reconcile slots at each tick for nothing).
    pub fn park(&self, key: &str) {
        self.with(|s, _| {
            if let Some(m) = s.motion.get_mut(key) {
                m.parked = true;
                m.deferred = true;
            }
        });
    }

    /// The look of `key` about to be recorded ([`Pace::in_motion`], [`Pace::not_yet`],
    /// [`Pace::settled`]) read data fetched between `window.0` and `window.1`: a peer not yet
    /// Available was so at the start at least, an Available one at the end at most. Under
    /// load a woken reconcile may run seconds after the listing it reads; without this its
    /// delay would be learned as Pending time.
    pub fn data_read(&self, key: &str, window: (Instant, Instant)) {
        self.with(|s, _| {
            if let Some(m) = s.motion.get_mut(key) {
                m.data = Some(window);
            }
        });
    }

    /// `key`, in motion, waited for a shared listing instead of being looked at: its settling
    /// time includes the wait, and is not learned as a per-object Pending or Deleting
    /// duration (its looks still count for [`ListedAfter`]).
    pub fn waited(&self, key: &str) {
        self.with(|s, _| {
            if let Some(m) = s.motion.get_mut(key) {
                m.deferred = true;
            }
        });
    }

    /// `key` settled (Available, gone, or no longer waited for): a create's Pending or a
    /// delete's Deleting duration is learned, and it no longer counts as in motion.
    pub fn settled(&self, key: &str) {
        let now = Instant::now();
        self.with(|s, l| {
            if let Some(m) = s.motion.remove(key)
                && let Some((since, write)) = m.since
            {
                let seen = m.data.map_or(now, |d| d.1.min(now));
                let took = seen.saturating_duration_since(since);
                if write == Write::Create {
                    l.listed.record(took, true);
                }
                tracing::debug!(
                    object = key,
                    ?write,
                    last_in_motion = ?m.last_pending,
                    settled_after = ?took,
                    learned = !m.deferred,
                    "settled"
                );
                if m.deferred {
                    return;
                }
                match write {
                    Write::Create => s.pending.record(m.last_pending, took),
                    Write::Delete => s.deleting.record(m.last_pending, took),
                }
            }
        });
    }

    /// `key` is not in motion for another reason (paused, refused, adopted…): it no longer
    /// counts, and nothing is learned.
    pub fn forget(&self, key: &str) {
        self.with(|s, _| {
            s.motion.remove(key);
        });
    }

    /// The current Pending estimate.
    pub fn pending_estimate(&self, poll: Duration) -> Duration {
        self.with(|s, _| s.pending.estimate(poll))
    }

    /// How long after our create its peer is likely listed Available, with a margin
    /// ([`ListedAfter`], or the Pending estimate until both kinds of looks were seen): a
    /// region listing taken sooner after our last create there misses the newest peers.
    pub fn creation_settle(&self, poll: Duration) -> Duration {
        self.with(|s, l| s.creation_settle(l, poll))
    }

    /// How long after our accepted delete its peer is likely gone from listings: the learned
    /// Deleting duration and a margin ([`DELETION_MARGIN`]). Until then after our last delete
    /// in a region, a paged listing of it is likely inconsistent.
    pub fn deletion_settle(&self, poll: Duration) -> Duration {
        self.with(|s, l| s.deletion_settle(l, poll))
    }
}

impl PaceState {
    fn track(&mut self, key: &str, now: Instant, write: Option<Write>) {
        let due = self
            .pruned
            .is_none_or(|t| now.saturating_duration_since(t) >= PRUNE_EVERY);
        if due || self.motion.len() >= MAX_MOTION {
            self.motion
                .retain(|_, m| now.saturating_duration_since(m.seen) < MOTION_STALE);
            self.pruned = Some(now);
        }
        let m = self.motion.entry(key.to_owned()).or_insert(Motion {
            since: None,
            last_pending: Duration::ZERO,
            seen: now,
            parked: false,
            deferred: false,
            data: None,
            missed: false,
            follow_up: false,
        });
        m.seen = now;
        if let Some(write) = write {
            m.since = Some((now, write));
            m.last_pending = Duration::ZERO;
            m.deferred = false;
            m.data = None;
            m.missed = false;
            m.follow_up = false;
        }
    }

    /// A look at `key` found it still in motion. The first such look past its estimate
    /// makes its next look a quick one ([`next_look`]'s `near_miss`).
    fn looked(&mut self, learned: &Learned, key: &str, now: Instant, poll: Duration) {
        let Some(since) = self.motion.get(key).and_then(|m| m.since) else {
            return;
        };
        let estimate = self.settle(learned, since.1, poll);
        if let Some(m) = self.motion.get_mut(key) {
            let (since, write) = since;
            let seen = m.data.take().map_or(now, |d| d.0.min(now));
            m.last_pending = seen.saturating_duration_since(since);
            if write == Write::Create {
                learned.listed.record(m.last_pending, false);
            }
            if now.saturating_duration_since(since) >= estimate && !m.missed {
                m.missed = true;
                m.follow_up = true;
            }
        }
    }

    /// The wait before `key`'s next look (a due quick follow-up is spent by it).
    fn next(&mut self, learned: &Learned, key: &str, now: Instant, poll: Duration) -> Duration {
        let since = self.motion.get(key).and_then(|m| m.since);
        let estimate = since.map_or(Duration::ZERO, |(_, write)| {
            self.settle(learned, write, poll)
        });
        let near_miss = self
            .motion
            .get_mut(key)
            .is_some_and(|m| std::mem::take(&mut m.follow_up));
        next_look(
            wall_ms(),
            poll,
            self.motion.len(),
            since.map(|(t, write)| (now.saturating_duration_since(t), write)),
            estimate,
            near_miss,
        )
    }

    /// When the effect of `write` is likely listed.
    fn settle(&self, learned: &Learned, write: Write, poll: Duration) -> Duration {
        match write {
            Write::Delete => self.deletion_settle(learned, poll),
            Write::Create => self.creation_settle(learned, poll),
        }
    }

    fn creation_settle(&self, learned: &Learned, poll: Duration) -> Duration {
        learned
            .listed
            .estimate(poll)
            .unwrap_or_else(|| self.pending.estimate(poll))
            + LISTING_MARGIN.min(poll / 10)
    }

    /// What listings showed of our deletes ([`ListedAfter::estimate_probing`]), else the
    /// per-object brackets of looks. The per-object estimate alone grew to 10.5 s in a mass
    /// deletion whose peers were gone 2 s after their deletes (N = 1,000, 72e2b96): 973 of
    /// 1,000 objects were never looked at while still Deleting, and their settling times,
    /// learned as upper bounds only, included their wait for their group's confirming
    /// listing, which the estimate itself timed (`observe::decide::confirm_by_group`).
    fn deletion_settle(&self, learned: &Learned, poll: Duration) -> Duration {
        learned
            .removed
            .estimate_probing(poll)
            .unwrap_or_else(|| self.deleting.estimate(poll))
            + DELETION_MARGIN.min(poll / 10)
    }
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

    const POLL: Duration = Duration::from_secs(5);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_pending_estimate_is_a_bounded_median_of_recent_brackets() {
        let mut e = PendingEstimate::default();
        // Nothing learned: half the poll interval.
        assert_eq!(e.estimate(POLL), ms(2500));
        // A look that already found it Available at 2.5 s: the middle, 1.25 s.
        e.record(Duration::ZERO, ms(2500));
        assert_eq!(e.estimate(POLL), ms(1250));
        // Bracketed by looks at 2.8 s (Pending) and 3.2 s (Available): 3 s. The median of
        // three picks it.
        e.record(ms(2800), ms(3200));
        e.record(ms(2900), ms(3100));
        assert_eq!(e.estimate(POLL), ms(3000));
        // An odd peer stuck Pending for minutes does not move it …
        e.record(ms(600_000), ms(601_000));
        assert_eq!(e.estimate(POLL), ms(3000));
        // … and old samples decay out: nine newer ones of 1 s replace them.
        for _ in 0..PENDING_SAMPLES {
            e.record(ms(900), ms(1100));
        }
        assert_eq!(e.estimate(POLL), ms(1000));
        // Bounded: never above 3 polls, never below the shortest look.
        let mut slow = PendingEstimate::default();
        slow.record(ms(100_000), ms(100_000));
        assert_eq!(slow.estimate(POLL), POLL * 3);
        let mut fast = PendingEstimate::default();
        fast.record(Duration::ZERO, Duration::ZERO);
        assert_eq!(fast.estimate(POLL), MIN_LOOK);
    }

    #[test]
    fn the_listed_after_estimate_separates_not_yet_from_available_across_objects() {
        let mut e = ListedAfter::default();
        assert_eq!(e.estimate(POLL), None, "nothing seen");
        // One listing during a mass create: peers 0.5–2.9 s old not listed yet, peers
        // 3.1–19 s old Available (each object looked once: no per-object bracket).
        for age in [500, 1200, 2000, 2900] {
            e.record(ms(age), false);
        }
        assert_eq!(e.estimate(POLL), None, "no Available look yet");
        for age in [3100, 8000, 14_000, 19_000] {
            e.record(ms(age), true);
        }
        assert_eq!(e.estimate(POLL), Some(ms(3000)));
        // An odd peer Pending for 12 s is outvoted (one sample on the wrong side), and the
        // estimate stays in the gap the others leave.
        e.record(ms(12_000), false);
        assert_eq!(e.estimate(POLL), Some(ms(3000)));
        // The Available samples near the gap may all be old (objects woken by a listing after
        // waiting for it): the estimate stays just above the oldest "not yet" instead of the
        // middle of a wide gap.
        let mut biased = ListedAfter::default();
        for age in [500, 1500, 2800] {
            biased.record(ms(age), false);
        }
        for age in [15_000, 18_000, 21_000] {
            biased.record(ms(age), true);
        }
        assert_eq!(biased.estimate(POLL), Some(ms(3050)));
        // A flood of one kind (the listing after a mass create shows every new peer
        // Available) does not push the other out.
        let mut flooded = ListedAfter::default();
        flooded.record(ms(2900), false);
        for _ in 0..10 * LISTED_SAMPLES {
            flooded.record(ms(20_000), true);
        }
        flooded.record(ms(3100), true);
        assert_eq!(flooded.estimate(POLL), Some(ms(3000)));
        // Old samples decay out: a slower cloud (listed after 6 s) takes over.
        for _ in 0..LISTED_SAMPLES / 2 {
            e.record(ms(5800), false);
            e.record(ms(6200), true);
        }
        assert_eq!(e.estimate(POLL), Some(ms(6000)));
        // Bounded like the Pending estimate.
        let mut slow = ListedAfter::default();
        slow.record(ms(100_000), false);
        slow.record(ms(200_000), true);
        assert_eq!(slow.estimate(POLL), Some(POLL * 3));
        // Unbounded (the observer's debug log): no overflow.
        assert_eq!(slow.estimate(Duration::MAX), Some(ms(100_250)));
    }

    #[tokio::test(start_paused = true)]
    async fn creation_settle_learns_from_looks_of_objects_that_waited_for_listings() {
        let pace = Pace::default();
        let poll = POLL;
        // Nothing learned: the Pending estimate (half the poll interval) and the margin.
        assert_eq!(pace.creation_settle(poll), ms(2500 + 300));
        // Two creates; a shared listing 3.5 s after the first finds it Available and the
        // second (created 1 s later) not listed yet; both had waited for that listing.
        pace.created("a", poll);
        tokio::time::advance(ms(1000)).await;
        pace.created("b", poll);
        tokio::time::advance(ms(2500)).await;
        pace.waited("a");
        pace.waited("b");
        pace.settled("a");
        pace.not_yet("b", poll, true);
        // Separated between 2.5 s and 3.5 s, at most 0.25 s above the "not yet": 2.75 s,
        // plus the margin.
        assert_eq!(pace.creation_settle(poll), ms(2750 + 300));
        // The per-object Pending estimate learned nothing from objects that waited (their
        // time includes the wait).
        assert_eq!(pace.pending_estimate(poll), ms(2500));
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_learned_is_the_age_of_the_data_not_of_the_reconcile_that_read_it() {
        let pace = Pace::default();
        let poll = POLL;
        let t0 = Instant::now();
        pace.created("a", poll);
        pace.created("b", poll);
        // A listing read 2.5–2.7 s after the creates: "a" not listed yet, "b" Available
        // (say). Under load, their reconciles run 2 s later: the ages are the data's.
        tokio::time::advance(ms(4700)).await;
        let window = (t0 + ms(2500), t0 + ms(2700));
        pace.data_read("a", window);
        pace.not_yet("a", poll, true);
        pace.data_read("b", window);
        pace.settled("b");
        // Not yet at 2.5 s at least, Available at 2.7 s at most: 2.6 s (and the margin).
        assert_eq!(pace.creation_settle(poll), ms(2600 + 300));
        // A window is used once: the next look without one is aged at its reconcile.
        tokio::time::advance(ms(300)).await;
        pace.not_yet("a", poll, true);
        assert_eq!(pace.with(|s, _| s.motion["a"].last_pending), ms(5000));
    }

    #[test]
    fn few_in_motion_look_when_likely_available_then_quickly() {
        let now = 1_000_000_000_123;
        // One object just created, Pending usually takes 3 s: its first look is at 3 s.
        assert_eq!(
            next_look(now, POLL, 1, Some((ms(10), Write::Create)), ms(3000), false),
            ms(2990)
        );
        // Past the estimate (still Pending): follow-ups every tenth of the poll interval.
        assert_eq!(
            next_look(
                now,
                POLL,
                1,
                Some((ms(3100), Write::Create)),
                ms(3000),
                false
            ),
            ms(500)
        );
        // Not a create (Modifying, Deleting): follow-ups too.
        assert_eq!(next_look(now, POLL, 1, None, ms(3000), false), ms(500));
        // More in motion: slower follow-ups (quick looks stay ~10 reads per poll in all).
        assert_eq!(next_look(now, POLL, 4, None, ms(3000), false), ms(2000));
        // Never below the shortest look.
        assert_eq!(
            next_look(
                now,
                POLL,
                1,
                Some((ms(2990), Write::Create)),
                ms(3000),
                false
            ),
            MIN_LOOK
        );
        assert_eq!(
            next_look(now, Duration::from_millis(200), 1, None, ms(3000), false),
            MIN_LOOK
        );
    }

    #[test]
    fn the_first_look_after_a_write_comes_when_its_effect_is_likely_listed() {
        let now = 1_000_000_000_123;
        // However many are in motion: during a mass create the looks before the last create
        // cost no read (deferred), and the first look after the last one fetches the region
        // listing that shows every new peer, when it can show the last; likewise during a
        // mass deletion the first look after the last removal confirms everyone.
        let cases = [
            (Write::Create, ms(300), ms(3300), ms(3000)),
            (Write::Delete, ms(500), ms(2500), ms(2000)),
        ];
        for (write, elapsed, estimate, wait) in cases {
            for in_motion in [1, 10, 1000] {
                let since = Some((elapsed, write));
                assert_eq!(
                    next_look(now, POLL, in_motion, since, estimate, false),
                    wait
                );
            }
        }
        // Past it (still Deleting): follow-ups at the pace, the shared tick when many.
        assert_eq!(
            next_look(
                now,
                POLL,
                1,
                Some((ms(2600), Write::Delete)),
                ms(2500),
                false
            ),
            ms(500)
        );
        assert_eq!(
            next_look(
                now,
                POLL,
                10,
                Some((ms(2600), Write::Delete)),
                ms(2500),
                false
            ),
            tick_after(now, POLL)
        );
    }

    #[test]
    fn a_near_miss_is_followed_up_quickly_unless_very_many_are_in_motion() {
        let now = 1_000_000_001_234;
        for write in [Write::Create, Write::Delete] {
            // Many more in motion: the shared tick.
            let since = Some((ms(2600), write));
            let many = QUICK_FOLLOW_UP_MAX + 1;
            assert_eq!(
                next_look(now, POLL, many, since, ms(2500), true),
                tick_after(now, POLL)
            );
            for in_motion in [1, 10, QUICK_FOLLOW_UP_MAX] {
                // Just past the estimate: a tenth of the poll interval.
                assert_eq!(
                    next_look(now, POLL, in_motion, since, ms(2500), true),
                    ms(500)
                );
                // A poll interval or more past it is no near miss: the pace.
                let late = Some((ms(7500), write));
                assert_eq!(
                    next_look(now, POLL, in_motion, late, ms(2500), true),
                    next_look(now, POLL, in_motion, late, ms(2500), false)
                );
            }
        }
        // Before the estimate the first look stays where it was.
        let early = Some((ms(500), Write::Delete));
        assert_eq!(next_look(now, POLL, 1000, early, ms(2500), true), ms(2000));
    }

    #[tokio::test(start_paused = true)]
    async fn one_quick_follow_up_per_write_for_a_look_that_just_missed() {
        let pace = Pace::default();
        let poll = POLL;
        // A mass deletion: 20 in motion, nothing learned (3 s with the margin).
        for i in 0..20 {
            pace.deleted(&format!("o{i}"), poll);
        }
        tokio::time::advance(ms(3100)).await;
        // The cleanup path records the look, and the error policy asks for the wait: the
        // quick follow-up, not the shared tick (the peer was gone 30 ms later in the bench).
        pace.seen_in_motion("o0", poll);
        assert_eq!(pace.not_yet("o0", poll, false), ms(500));
        // Spent: the next miss of the same write waits at the pace (the tick, with 20).
        tokio::time::advance(ms(500)).await;
        pace.seen_in_motion("o0", poll);
        let wait = pace.not_yet("o0", poll, false);
        assert!(on_tick(wait), "{wait:?}");
        // A wait asked without a look in between earns nothing.
        let wait = pace.not_yet("o1", poll, false);
        assert!(on_tick(wait), "{wait:?}");
        // A new write grants a new one (creates, through `in_motion`, alike).
        pace.created("o0", poll);
        tokio::time::advance(ms(3200)).await;
        assert_eq!(pace.in_motion("o0", poll), ms(500));
        let wait = pace.in_motion("o0", poll);
        assert!(on_tick(wait), "{wait:?}");
    }

    /// Whether a wait asked now ends on a shared tick (a multiple of the poll interval).
    fn on_tick(wait: Duration) -> bool {
        let at = (wall_ms() + wait.as_millis()) % POLL.as_millis();
        at < 50 || at > POLL.as_millis() - 50
    }

    #[tokio::test(start_paused = true)]
    async fn pace_learns_deleting_durations_apart_from_pending_ones() {
        let pace = Pace::default();
        let poll = POLL;
        // Nothing learned: half the poll interval, and the margin.
        assert_eq!(pace.deletion_settle(poll), ms(2750));
        assert_eq!(pace.deleted("a", poll), ms(2750));
        tokio::time::advance(ms(3000)).await;
        // Gone at the first look, 3 s after the delete: bounded above, learned as 1.5 s.
        pace.settled("a");
        assert_eq!(pace.deletion_settle(poll), ms(1750));
        assert_eq!(pace.pending_estimate(poll), ms(2500));
        // Still Deleting at the first look 2 s after, gone at the next 0.5 s later: 2.25 s
        // (the median of 1.5 s and 2.25 s is the upper one).
        assert_eq!(pace.deleted("b", poll), ms(1750));
        tokio::time::advance(ms(2000)).await;
        assert_eq!(pace.in_motion("b", poll), ms(500));
        tokio::time::advance(ms(500)).await;
        pace.settled("b");
        assert_eq!(pace.deletion_settle(poll), ms(2500));
        assert_eq!(pace.pending_estimate(poll), ms(2500));
    }

    #[test]
    fn deletion_settle_follows_what_listings_showed_of_our_deletes() {
        let pace = Pace::default();
        let poll = POLL;
        // Per-object looks learned 10 s: objects that waited for their group's confirming
        // listing, never looked at while still Deleting (upper bounds of 20 s).
        pace.with(|s, _| {
            for _ in 0..PENDING_SAMPLES {
                s.deleting.record(Duration::ZERO, ms(20_000));
            }
        });
        assert_eq!(pace.deletion_settle(poll), ms(10_250));
        // Listings showed our deleted peers gone only, 8 s and 9 s after their deletes: the
        // next looks probe at half the youngest (and the margin).
        let removed = pace.removed();
        removed.record(ms(8000), true);
        removed.record(ms(9000), true);
        assert_eq!(pace.deletion_settle(poll), ms(4250));
        // A listing 1.9 s after a delete still showed its peer: just above that.
        removed.record(ms(1900), false);
        assert_eq!(pace.deletion_settle(poll), ms(2400));
        // The first look after a delete comes then, alone in motion or not.
        assert_eq!(pace.deleted("a", poll), ms(2400));
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_woken_by_the_listing_it_waits_for_looks_again_only_as_a_fallback() {
        let pace = Pace::default();
        let poll = POLL;
        assert_eq!(pace.deleted("a", poll), ms(2750));
        tokio::time::advance(ms(3000)).await;
        // Its look was deferred (our deletes go on in its region) and it is registered for
        // the listing: a fallback look only.
        pace.park("a");
        assert_eq!(pace.not_yet("a", poll, false), PARKED_FALLBACK);
        // Once: the next no-answer without a registration follows the pace again.
        assert_eq!(pace.not_yet("a", poll, false), ms(500));
        // Released when the listing it waited for came: that time includes the deferral,
        // and is not learned as a Deleting duration.
        tokio::time::advance(ms(20_000)).await;
        pace.settled("a");
        assert_eq!(pace.deletion_settle(poll), ms(2750));
        // Parking something not in motion changes nothing: the shared tick.
        pace.park("settled");
        let wait = pace.not_yet("settled", poll, false);
        assert_ne!(wait, PARKED_FALLBACK);
    }

    #[test]
    fn many_in_motion_share_the_tick() {
        // Ten or more in motion: follow-ups on the shared tick, whatever the estimate.
        for now in [1_000_000_000_000u128, 1_000_000_001_234, 1_000_000_004_999] {
            for since in [
                None,
                Some((ms(3100), Write::Create)),
                Some((ms(9000), Write::Delete)),
            ] {
                assert_eq!(
                    next_look(now, POLL, 10, since, ms(3000), false),
                    tick_after(now, POLL)
                );
            }
        }
        // Two objects asking 300 ms apart land on the same instant.
        let a = 1_000_000_001_000u128;
        let b = a + 300;
        let at_a = a + next_look(a, POLL, 50, None, ms(3000), false).as_millis();
        let at_b = b + next_look(b, POLL, 50, None, ms(3000), false).as_millis();
        assert_eq!(at_a, at_b);
        assert_eq!(at_a % POLL.as_millis(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn pace_learns_pending_durations_from_looks() {
        let pace = Pace::default();
        let poll = POLL;
        // First object: nothing learned, first look at half the poll interval and the margin.
        assert_eq!(pace.created("a", poll), ms(2800));
        tokio::time::advance(ms(2800)).await;
        // Still Pending at 2.8 s: a quick follow-up.
        assert_eq!(pace.in_motion("a", poll), ms(500));
        tokio::time::advance(ms(500)).await;
        // Available at 3.3 s: learned (2.8 + 3.3) / 2, as a bracket and across objects.
        pace.settled("a");
        assert_eq!(pace.pending_estimate(poll), ms(3050));
        // The next create is first looked at then, with the margin.
        assert_eq!(pace.created("b", poll), ms(3350));
        // Settling something never created (an adoption, a modify) learns nothing.
        pace.in_motion("c", poll);
        pace.settled("c");
        pace.settled("unknown");
        assert_eq!(pace.pending_estimate(poll), ms(3050));
        assert_eq!(pace.creation_settle(poll), ms(3350));
        // Two in motion ("b", and "d" now): follow-ups every 1 s.
        assert_eq!(pace.in_motion("d", poll), ms(1000));
        // An object that stops being in motion for another reason no longer counts …
        pace.forget("d");
        assert_eq!(pace.in_motion("e", poll), ms(1000));
        // … nor does one never looked at again (deleted meanwhile).
        tokio::time::advance(MOTION_STALE).await;
        assert_eq!(pace.in_motion("e", poll), ms(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_peer_not_yet_listed_is_looked_at_again_at_its_pace() {
        let pace = Pace::default();
        let poll = POLL;
        // Learned: Pending (or invisible) about 3 s, listed 2.7 s after the create (and the
        // margin: 3 s).
        for _ in 0..PENDING_SAMPLES {
            pace.with(|s, l| {
                s.pending.record(ms(2900), ms(3100));
                l.listed.record(ms(2600), false);
                l.listed.record(ms(2800), true);
            });
        }
        assert_eq!(pace.created("a", poll), ms(3000));
        tokio::time::advance(ms(3000)).await;
        // Its first look found it not yet listed (read-after-write lag): alone in motion, it
        // looks again a tenth of the poll interval later, not at the next shared tick.
        assert_eq!(pace.not_yet("a", poll, true), ms(500));
        tokio::time::advance(ms(500)).await;
        // That look counted as "still invisible at 3 s": Available at 3.5 s brackets 3.25 s.
        pace.settled("a");
        let mut expected = PendingEstimate::default();
        for _ in 0..PENDING_SAMPLES - 1 {
            expected.record(ms(2900), ms(3100));
        }
        expected.record(ms(3000), ms(3500));
        assert_eq!(pace.pending_estimate(poll), expected.estimate(poll));
        // Waiting for a listing (not a look): the pace (here its first look, when likely
        // Available), and nothing learned from it.
        pace.created("b", poll);
        tokio::time::advance(ms(100)).await;
        assert_eq!(pace.not_yet("b", poll, false), ms(2900));
        assert_eq!(pace.with(|s, _| s.motion["b"].last_pending), Duration::ZERO);
        // An object not in motion (a settled one waiting for a listing) waits for the shared
        // tick and is not counted as in motion.
        // (Wall-clock ticks: the wait ends on a multiple of the poll interval.)
        let wait = pace.not_yet("settled", poll, false);
        assert!(on_tick(wait), "{wait:?}");
        assert!(!pace.with(|s, _| s.motion.contains_key("settled")));
        // Many in motion: before its estimate, a new peer not yet listed looks again when
        // it is likely listed; after it, at the shared tick.
        for i in 0..20 {
            pace.created(&format!("m{i}"), poll);
        }
        assert_eq!(pace.not_yet("b", poll, true), ms(2900));
        tokio::time::advance(ms(3000)).await;
        // Its first miss past the estimate: one quick follow-up; the next at the tick.
        assert_eq!(pace.not_yet("b", poll, true), ms(500));
        tokio::time::advance(ms(500)).await;
        let wait = pace.not_yet("b", poll, true);
        assert!(on_tick(wait), "{wait:?}");
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&d), "{d}");
        }
    }
}
