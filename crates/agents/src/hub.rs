//! The run hub: the ordered event log of each live run, which any number of clients follow
//! and re-attach to from any sequence number (`Last-Event-ID`).
//!
//! Events are kept in memory while the run lives and for a while after it ends, so a client
//! that lost its connection can still collect the end (later, the run's stored record serves
//! it). Finished runs leave in the order they finished, a few at each new run, so opening a
//! run costs the same with ten runs kept or a hundred thousand. Sharing runs across instances (and
//! replay after a restart) is the scale-out work: another [`RunLog`] behind the same port.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frontdesk_core::id::{RunId, TenantId};
use frontdesk_core::run::{RunEvent, SequencedEvent};
use frontdesk_core::time::Timestamp;
use tokio::sync::Notify;

use crate::ports::{Follower, Publisher, RunLog, RunWriter};

/// How long a finished run's events stay in memory. The run's record (stored right after its
/// last event) serves followers after that.
const KEEP_FINISHED: Duration = Duration::from_secs(2 * 60);

/// How long a run's events wait between being shown to followers and a follower taking
/// them (for a client's stream: the connection polling it), in seconds. Only events shown
/// after the follower attached count, so a client catching up on a run does not. A long wait
/// means the runtime's threads are too busy to pass tokens on, or a client reads slowly (its
/// connection takes the next event only once the socket has room).
pub const EVENT_WAIT_METRIC: &str = "frontdesk_run_event_wait_seconds";

/// One run's log.
#[derive(Debug)]
struct Log {
    tenant: TenantId,
    events: Vec<SequencedEvent>,
    /// When each event was shown to followers (`None`: not yet, or it came from storage).
    shown_at: Vec<Option<Instant>>,
    /// How many events followers may see (events appended but not yet woken stay hidden).
    visible: usize,
    finished_at: Option<Instant>,
}

/// A run's log and the signal that it grew.
type Entry = Arc<(Mutex<Log>, Notify)>;

/// Runs in the order they finished (a run that finished twice, around a pause, is here twice).
type Finished = Arc<Mutex<VecDeque<(Instant, RunId)>>>;

/// The live runs of this process.
#[derive(Debug, Clone)]
pub struct RunHub {
    runs: Arc<Mutex<HashMap<RunId, Entry>>>,
    finished: Finished,
    keep: Duration,
}

impl Default for RunHub {
    fn default() -> Self {
        Self::keeping_finished_for(KEEP_FINISHED)
    }
}

/// Writes one run's events, in order.
#[derive(Debug, Clone)]
struct HubWriter {
    run: Entry,
    id: RunId,
    finished: Finished,
}

/// Reads one run's events from a point on.
#[derive(Debug)]
struct HubFollower {
    run: Entry,
    next_seq: u64,
    /// When it began to follow: events shown before then are not timed.
    attached: Instant,
    /// Where their waits go (looked up once, not at every event).
    waits: metrics::Histogram,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl RunHub {
    /// A hub that keeps finished runs for `keep` (the default: [`KEEP_FINISHED`]).
    pub fn keeping_finished_for(keep: Duration) -> Self {
        Self {
            runs: Arc::default(),
            finished: Arc::default(),
            keep,
        }
    }

    fn publisher(&self, run: &RunId, entry: Entry) -> Publisher {
        Publisher::new(Arc::new(HubWriter {
            run: entry,
            id: run.clone(),
            finished: self.finished.clone(),
        }))
    }

    /// Drops the runs that finished longer ago than the hub keeps them (only those: a run
    /// that went on after a pause, or finished again since, stays).
    fn forget_finished(&self, runs: &mut HashMap<RunId, Entry>) {
        let mut finished = lock(&self.finished);
        while let Some((at, run)) = finished.front() {
            if at.elapsed() < self.keep {
                break;
            }
            let expired = runs.get(run).is_some_and(|entry| {
                lock(&entry.0)
                    .finished_at
                    .is_some_and(|at| at.elapsed() >= self.keep)
            });
            if expired {
                runs.remove(run);
            }
            finished.pop_front();
        }
    }
}

impl RunLog for RunHub {
    fn open(&self, run: &RunId, tenant: &TenantId) -> Publisher {
        let entry = Arc::new((
            Mutex::new(Log {
                tenant: tenant.clone(),
                events: Vec::new(),
                shown_at: Vec::new(),
                visible: 0,
                finished_at: None,
            }),
            Notify::new(),
        ));
        let mut runs = lock(&self.runs);
        self.forget_finished(&mut runs);
        runs.insert(run.clone(), entry.clone());
        self.publisher(run, entry)
    }

    fn reopen(&self, run: &RunId, tenant: &TenantId, events: Vec<SequencedEvent>) -> Publisher {
        let entry = Arc::new((
            Mutex::new(Log {
                tenant: tenant.clone(),
                visible: events.len(),
                shown_at: vec![None; events.len()],
                events,
                finished_at: None,
            }),
            Notify::new(),
        ));
        lock(&self.runs).insert(run.clone(), entry.clone());
        self.publisher(run, entry)
    }

    fn paused(&self, run: &RunId) -> bool {
        let Some(entry) = lock(&self.runs).get(run).cloned() else {
            return false;
        };
        let log = lock(&entry.0);
        log.events.last().is_some_and(|e| {
            matches!(
                e.event,
                RunEvent::RunCompleted {
                    status: frontdesk_core::run::RunStatus::AwaitingApproval,
                    ..
                }
            )
        })
    }

    fn follow(&self, run: &RunId, tenant: &TenantId, last_seq: u64) -> Option<Follower> {
        let entry = lock(&self.runs).get(run).cloned()?;
        if lock(&entry.0).tenant != *tenant {
            return None;
        }
        let follower = HubFollower {
            run: entry,
            next_seq: last_seq + 1,
            attached: Instant::now(),
            waits: metrics::histogram!(EVENT_WAIT_METRIC),
        };
        Some(Follower::from_stream(futures_util::stream::unfold(
            follower,
            |mut follower| async move { follower.next().await.map(|event| (event, follower)) },
        )))
    }
}

impl RunWriter for HubWriter {
    fn events(&self) -> Vec<SequencedEvent> {
        lock(&self.run.0).events.clone()
    }

    fn wake(&self) {
        {
            let mut log = lock(&self.run.0);
            let now = Some(Instant::now());
            let visible = log.visible;
            debug_assert_eq!(log.shown_at.len(), log.events.len());
            for shown in log.shown_at.iter_mut().skip(visible) {
                *shown = now;
            }
            log.visible = log.events.len();
        }
        self.run.1.notify_waiters();
    }

    fn discard_hidden(&self) {
        let mut log = lock(&self.run.0);
        let visible = log.visible;
        log.events.truncate(visible);
        log.shown_at.truncate(visible);
        if !log.events.last().is_some_and(|e| e.event.is_terminal()) {
            log.finished_at = None;
        }
    }

    fn append(&self, event: RunEvent) -> u64 {
        let finished = event.is_terminal().then(Instant::now);
        let seq = {
            let mut log = lock(&self.run.0);
            let seq = log.events.len() as u64 + 1;
            if finished.is_some() {
                log.finished_at = finished;
            }
            log.events.push(SequencedEvent {
                seq,
                at: Timestamp::now(),
                event,
            });
            log.shown_at.push(None);
            seq
        };
        // After the log's lock is let go: the hub takes the queue's lock before a log's.
        if let Some(at) = finished {
            lock(&self.finished).push_back((at, self.id.clone()));
        }
        seq
    }
}

impl HubFollower {
    /// The next event, waiting for it; `None` after the terminal event.
    async fn next(&mut self) -> Option<SequencedEvent> {
        let (log, notify) = &*self.run;
        loop {
            // Register interest before looking, so a publish in between is not missed.
            let notified = notify.notified();
            let taken = {
                let log = lock(log);
                let at = (self.next_seq - 1) as usize;
                match log.events.get(at).filter(|_| at < log.visible) {
                    Some(event) => {
                        let shown = log.shown_at.get(at).copied().flatten();
                        Some((event.clone(), shown))
                    }
                    None if log.finished_at.is_some() && log.visible >= log.events.len() => {
                        return None
                    }
                    None => None,
                }
            };
            if let Some((event, shown)) = taken {
                self.next_seq += 1;
                // Recorded after the log's lock is let go: the publisher needs it.
                if let Some(shown) = shown.filter(|shown| *shown >= self.attached) {
                    self.waits.record(shown.elapsed());
                }
                return Some(event);
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Follower, Publisher, RunLog};
    use frontdesk_core::conversation::Usage;
    use frontdesk_core::run::RunStatus;

    #[tokio::test]
    async fn followers_see_everything_in_order_from_where_they_ask() {
        let hub = RunHub::default();
        let (run, tenant) = (RunId::new(), TenantId::new());
        let publisher = hub.open(&run, &tenant);
        let mut early = hub
            .follow(&run, &tenant, 0)
            .unwrap_or_else(|| unreachable!());
        let writer = tokio::spawn(async move {
            for n in 0..50 {
                publisher.publish(RunEvent::MessageDelta {
                    text: n.to_string(),
                });
                tokio::task::yield_now().await;
            }
            publisher.publish(RunEvent::RunCompleted {
                status: RunStatus::Completed,
                usage: Usage::default(),
            });
        });
        let mut seen = Vec::new();
        while let Some(event) = early.next().await {
            seen.push(event.seq);
        }
        writer.await.unwrap_or_default();
        assert_eq!(seen, (1..=51).collect::<Vec<_>>());
        // A late follower re-attaching after event 40 gets 41.. and the end.
        let mut late = hub
            .follow(&run, &tenant, 40)
            .unwrap_or_else(|| unreachable!());
        let mut rest = Vec::new();
        while let Some(event) = late.next().await {
            rest.push(event.seq);
        }
        assert_eq!(rest, (41..=51).collect::<Vec<_>>());
        // Another tenant cannot follow it.
        assert!(hub.follow(&run, &TenantId::new(), 0).is_none());
    }

    fn complete(publisher: &Publisher) {
        publisher.publish(RunEvent::RunCompleted {
            status: RunStatus::Completed,
            usage: Usage::default(),
        });
    }

    #[tokio::test]
    async fn finished_runs_are_forgotten_after_a_while_and_only_they() {
        let hub = RunHub::keeping_finished_for(Duration::from_millis(30));
        let tenant = TenantId::new();
        let (done, running, resumed) = (RunId::new(), RunId::new(), RunId::new());
        complete(&hub.open(&done, &tenant));
        let _running = hub.open(&running, &tenant);
        complete(&hub.open(&resumed, &tenant));
        tokio::time::sleep(Duration::from_millis(40)).await;
        // The third run went on after a pause: its new log is not the one that finished.
        let _resumed = hub.reopen(&resumed, &tenant, Vec::new());
        let fresh = RunId::new();
        let _fresh = hub.open(&fresh, &tenant);
        assert!(
            hub.follow(&done, &tenant, 0).is_none(),
            "a finished run is forgotten"
        );
        assert!(
            hub.follow(&running, &tenant, 0).is_some(),
            "a running run stays"
        );
        assert!(
            hub.follow(&resumed, &tenant, 0).is_some(),
            "a resumed run stays"
        );
        assert!(hub.follow(&fresh, &tenant, 0).is_some());
        assert!(
            lock(&hub.finished).is_empty(),
            "each finish is looked at once"
        );
        // A run that finished stays until its time is up (a long time here, so that a slow
        // machine cannot make it expire).
        let patient = RunHub::keeping_finished_for(Duration::from_secs(600));
        let late = RunId::new();
        complete(&patient.open(&late, &tenant));
        let _another = patient.open(&RunId::new(), &tenant);
        assert!(patient.follow(&late, &tenant, 0).is_some());
        assert_eq!(lock(&patient.finished).len(), 1, "it waits its turn");
    }

    /// Counts what is recorded into the event-wait histogram.
    #[derive(Default)]
    struct Waits(Arc<Mutex<Vec<f64>>>);

    impl metrics::HistogramFn for Waits {
        fn record(&self, value: f64) {
            lock(&self.0).push(value);
        }
    }

    impl metrics::Recorder for Waits {
        fn describe_counter(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn register_counter(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
            metrics::Counter::noop()
        }
        fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::noop()
        }
        fn register_histogram(
            &self,
            key: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Histogram {
            assert_eq!(key.name(), EVENT_WAIT_METRIC);
            metrics::Histogram::from_arc(Arc::new(Waits(self.0.clone())))
        }
    }

    #[test]
    fn followers_time_what_was_shown_after_they_attached() {
        use futures_util::FutureExt;
        let waits = Waits::default();
        let seen = waits.0.clone();
        let (run, tenant) = (RunId::new(), TenantId::new());
        let take_all = |follower: &mut Follower| -> Vec<String> {
            (0..4)
                .filter_map(|_| follower.next().now_or_never().flatten())
                .map(|e| match e.event {
                    RunEvent::MessageDelta { text } => text,
                    _ => String::new(),
                })
                .collect()
        };
        metrics::with_local_recorder(&waits, || {
            let hub = RunHub::default();
            // Two events from storage (a run that goes on after a pause): not timed.
            let stored = (1..=2)
                .map(|seq| SequencedEvent {
                    seq,
                    at: Timestamp::now(),
                    event: RunEvent::MessageDelta { text: "old".into() },
                })
                .collect();
            let publisher = hub.reopen(&run, &tenant, stored);
            let mut follower = hub
                .follow(&run, &tenant, 0)
                .unwrap_or_else(|| unreachable!());
            publisher.publish(RunEvent::MessageDelta { text: "a".into() });
            // Hidden, then dropped: nobody takes it. Hidden, then shown: timed from the wake.
            publisher.append(RunEvent::MessageDelta {
                text: "gone".into(),
            });
            publisher.discard_hidden();
            publisher.append(RunEvent::MessageDelta { text: "b".into() });
            std::thread::sleep(Duration::from_millis(20));
            publisher.wake();
            assert_eq!(take_all(&mut follower), ["old", "old", "a", "b"]);
            // A client that attaches late and catches up is not timed.
            let mut late = hub
                .follow(&run, &tenant, 0)
                .unwrap_or_else(|| unreachable!());
            assert_eq!(take_all(&mut late), ["old", "old", "a", "b"]);
        });
        let seen = lock(&seen).clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        // "a" was shown before the pause and waited through it; "b" is timed from its wake.
        assert!(seen[0] >= 0.02, "{seen:?}");
        assert!(
            seen[1] < 0.015,
            "timed from the wake, not the append: {seen:?}"
        );
    }
}
