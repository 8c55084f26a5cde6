//! The stage runtime: typed stages on their own threads, joined by bounded crossbeam channels.
//!
//! ```text
//! Source --ch--> Stage (N workers) --ch--> ... --ch--> Sink
//! ```
//!
//! Guarantees (DESIGN.md "Stages and channels"):
//! 1. Every channel is `bounded`; its capacity comes from a byte budget divided by the
//!    largest item expected ([`Budget`]). A full channel blocks the sender. The items between
//!    the source's `emit` and the sink's `consume` can be bounded as a whole
//!    ([`Budget::in_flight`]).
//! 2. Receivers consume with `recv()` (inside `select!` with the cancel signal) until the
//!    channel disconnects; end of input is signalled only by dropping senders.
//! 3. The first error (or panic) in any stage cancels the run: every thread sees the cancel
//!    signal in its next blocking call, all threads are joined, and that first error is
//!    returned with its stage named.
//! 4. Items carry sequence numbers; a stage with several workers dispatches items in order,
//!    with at most `window` in flight, and a reorder step restores the order afterwards.
//! 5. Each stage records items, rows, bytes, busy time and the time it was blocked
//!    sending (downstream slow) or receiving (upstream slow); [`RunReport`] names the
//!    bottleneck.
//!
//! Mis-wiring does not compile: [`Flow<T>`] only accepts a stage whose input is `T`.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, Sender};
use serde::{Deserialize, Serialize};

/// What an item reports about its size, for metrics and channel sizing.
pub trait Measure {
    fn rows(&self) -> usize;
    fn bytes(&self) -> usize;
}

/// A stage's error: which stage, which partition, what happened.
#[derive(Debug)]
pub struct StageError<E> {
    pub stage: String,
    pub partition: Option<String>,
    pub error: E,
}

impl<E: std::fmt::Display> std::fmt::Display for StageError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.partition {
            Some(p) => write!(f, "stage '{}', partition {}: {}", self.stage, p, self.error),
            None => write!(f, "stage '{}': {}", self.stage, self.error),
        }
    }
}

/// Errors a runtime can produce itself, besides the stages' own.
pub trait RuntimeError: Send + 'static {
    fn panicked(message: String) -> Self;
    fn injected(stage: &str) -> Self;
    /// The run was cancelled from outside (a signal) before it finished.
    fn cancelled() -> Self;
}

/// Cancellation, shared by every thread of a run (and by signal handlers).
#[derive(Clone)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    tx: Arc<Mutex<Option<Sender<()>>>>,
    rx: Receiver<()>,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel").field("cancelled", &self.is_cancelled()).finish()
    }
}

impl Default for Cancel {
    fn default() -> Self {
        let (tx, rx) = bounded(0);
        Cancel { flag: Arc::new(AtomicBool::new(false)), tx: Arc::new(Mutex::new(Some(tx))), rx }
    }
}

impl Cancel {
    /// Wake every blocked thread: dropping the only sender disconnects `rx` for everyone.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Becomes ready (disconnected) when the run is cancelled; for `select!`.
    pub fn signal(&self) -> &Receiver<()> {
        &self.rx
    }
}

/// Per-stage counters, updated by its threads.
#[derive(Default)]
struct Counters {
    items_in: AtomicU64,
    items_out: AtomicU64,
    rows_out: AtomicU64,
    bytes_out: AtomicU64,
    busy_ns: AtomicU64,
    blocked_send_ns: AtomicU64,
    blocked_recv_ns: AtomicU64,
}

fn add(c: &AtomicU64, d: Duration) {
    c.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
}

/// One stage's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageMetrics {
    pub stage: String,
    pub workers: usize,
    pub items_in: u64,
    pub items_out: u64,
    pub rows_out: u64,
    pub bytes_out: u64,
    pub busy_s: f64,
    pub blocked_send_s: f64,
    pub blocked_recv_s: f64,
}

/// The run's figures, per stage, and which stage bounded the throughput.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub stages: Vec<StageMetrics>,
    pub channel_capacity: usize,
    /// The stage with the largest busy time per worker: speeding anything else up would not
    /// make the run faster.
    pub bottleneck: Option<String>,
    pub wall_s: f64,
}

/// Channel sizing: capacity = budget / largest expected item, at least 1; the source's own
/// channel holds `source_items` (a source that reads ahead itself, bounded by bytes, needs
/// only 1). `in_flight`, when not 0, bounds the items between the source's `emit` and the
/// sink's `consume`, whatever the channels and the workers' windows would hold.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub channel_bytes: usize,
    pub item_bytes: usize,
    pub source_items: usize,
    pub in_flight: usize,
}

impl Budget {
    pub fn capacity(&self) -> usize {
        (self.channel_bytes / self.item_bytes.max(1)).clamp(1, 1024)
    }
}

/// A numbered item.
struct Env<T> {
    seq: u64,
    item: T,
}

type ErrorSlot<E> = Arc<Mutex<Option<StageError<E>>>>;

struct Shared<E> {
    cancel: Cancel,
    first_error: ErrorSlot<E>,
    /// `SLUICE_FAIL_STAGE=STAGE[:N]` (tests): that stage fails at its N-th item (default 1).
    fail_at: Option<(String, u64)>,
    capacity: usize,
}

impl<E> Clone for Shared<E> {
    fn clone(&self) -> Self {
        Shared {
            cancel: self.cancel.clone(),
            first_error: self.first_error.clone(),
            fail_at: self.fail_at.clone(),
            capacity: self.capacity,
        }
    }
}

impl<E: RuntimeError> Shared<E> {
    /// Record the first error and cancel everything.
    fn fail(&self, err: StageError<E>) {
        if let Ok(mut slot) = self.first_error.lock() {
            if slot.is_none() {
                *slot = Some(err);
            }
        }
        self.cancel.cancel();
    }

    /// Run a thread body, turning a panic into an error.
    fn guard(&self, stage: &str, body: impl FnOnce() -> Result<(), Stop<E>>) {
        match catch_unwind(AssertUnwindSafe(body)) {
            Ok(Ok(())) | Ok(Err(Stop::Cancelled)) => {}
            Ok(Err(Stop::Failed(partition, e))) => self.fail(StageError { stage: stage.to_string(), partition, error: e }),
            Err(panic) => {
                let msg = panic_message(panic.as_ref());
                self.fail(StageError { stage: stage.to_string(), partition: None, error: E::panicked(msg) });
            }
        }
    }

    /// The injected failure (`SLUICE_FAIL_STAGE`), if `stage` is to fail at its `item`-th item.
    fn injected(&self, stage: &str, item: u64) -> Result<(), Stop<E>> {
        match &self.fail_at {
            Some((s, n)) if s == stage && *n == item => Err(Stop::Failed(None, E::injected(stage))),
            _ => Ok(()),
        }
    }
}

/// The message a panic was raised with.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Why a thread stopped early.
enum Stop<E> {
    Cancelled,
    Failed(Option<String>, E),
}

/// Send, or give up when the run is cancelled or the receiver is gone.
fn send<T, E>(tx: &Sender<T>, item: T, cancel: &Cancel, c: &Counters) -> Result<(), Stop<E>> {
    let t = Instant::now();
    let r = select! {
        send(tx, item) -> r => r.map_err(|_| Stop::Cancelled),
        recv(cancel.signal()) -> _ => Err(Stop::Cancelled),
    };
    add(&c.blocked_send_ns, t.elapsed());
    r
}

/// Receive the next item; `None` when upstream has finished (disconnected).
fn recv<T, E>(rx: &Receiver<T>, cancel: &Cancel, c: &Counters) -> Result<Option<T>, Stop<E>> {
    let t = Instant::now();
    let r = select! {
        recv(rx) -> msg => Ok(msg.ok()),
        recv(cancel.signal()) -> _ => Err(Stop::Cancelled),
    };
    add(&c.blocked_recv_ns, t.elapsed());
    r
}

/// The handle a source uses to emit items.
pub struct Emitter<'a, T, E> {
    stage: &'a str,
    tx: &'a Sender<Env<T>>,
    /// One token per item in flight ([`Budget::in_flight`]); the sink takes them back.
    tokens: Option<&'a Sender<()>>,
    shared: &'a Shared<E>,
    counters: &'a Counters,
    next_seq: u64,
}

/// Returned by [`Emitter::emit`] when the run was cancelled: stop producing.
#[derive(Debug)]
pub struct Cancelled;

impl<T: Measure, E: RuntimeError> Emitter<'_, T, E> {
    pub fn emit(&mut self, item: T) -> Result<(), Cancelled> {
        let n = self.counters.items_out.fetch_add(1, Ordering::Relaxed) + 1;
        if let Err(Stop::Failed(partition, error)) = self.shared.injected(self.stage, n) {
            self.shared.fail(StageError { stage: self.stage.to_string(), partition, error });
            return Err(Cancelled);
        }
        self.counters.rows_out.fetch_add(item.rows() as u64, Ordering::Relaxed);
        self.counters.bytes_out.fetch_add(item.bytes() as u64, Ordering::Relaxed);
        let env = Env { seq: self.next_seq, item };
        self.next_seq += 1;
        if let Some(tokens) = self.tokens {
            send::<_, E>(tokens, (), &self.shared.cancel, self.counters).map_err(|_| Cancelled)?;
        }
        send::<_, E>(self.tx, env, &self.shared.cancel, self.counters).map_err(|_| Cancelled)
    }

    pub fn is_cancelled(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }
}

/// Produces the items of a run.
pub trait Source: Send + 'static {
    type Out: Measure + Send + 'static;
    type Error: RuntimeError;
    /// Emit every item; return early with `Ok` when `emit` reports cancellation.
    fn run(&mut self, out: &mut Emitter<'_, Self::Out, Self::Error>) -> Result<(), (Option<String>, Self::Error)>;
}

/// Turns each input item into one output item.
pub trait Stage: Send + 'static {
    type In: Send + 'static;
    type Out: Measure + Send + 'static;
    type Error: RuntimeError;
    fn process(&mut self, item: Self::In) -> Result<Self::Out, (Option<String>, Self::Error)>;
}

/// Consumes the last items and produces the run's result.
pub trait Sink: Send + 'static {
    type In: Send + 'static;
    type Output: Send + 'static;
    type Error: RuntimeError;
    fn consume(&mut self, item: Self::In) -> Result<(), (Option<String>, Self::Error)>;
    fn finish(self) -> Result<Self::Output, (Option<String>, Self::Error)>;
}

struct StageHandle {
    name: String,
    workers: usize,
    counters: Arc<Counters>,
}

/// A run being wired: the typed end of the chain so far.
pub struct Flow<T, E> {
    rx: Receiver<Env<T>>,
    /// The items in flight, one token each (see [`Emitter`]).
    tokens: Option<Receiver<()>>,
    shared: Shared<E>,
    threads: Vec<JoinHandle<()>>,
    stages: Vec<StageHandle>,
    started: Instant,
}

/// Start a run with its source.
pub fn source<S: Source>(name: &str, mut src: S, budget: Budget, cancel: Cancel) -> Flow<S::Out, S::Error> {
    let shared = Shared {
        cancel,
        first_error: Arc::new(Mutex::new(None)),
        fail_at: std::env::var("SLUICE_FAIL_STAGE").ok().map(|v| match v.split_once(':') {
            Some((stage, n)) => (stage.to_string(), n.parse().unwrap_or(1)),
            None => (v, 1),
        }),
        capacity: budget.capacity(),
    };
    let (tx, rx) = bounded(budget.source_items.max(1));
    let (tokens_tx, tokens) = match budget.in_flight {
        0 => (None, None),
        n => {
            let (t, r) = bounded(n);
            (Some(t), Some(r))
        }
    };
    let counters = Arc::new(Counters::default());
    let (sh, c, stage) = (shared.clone(), counters.clone(), name.to_string());
    let t = std::thread::Builder::new()
        .name(format!("sluice-{name}"))
        .spawn(move || {
            sh.guard(&stage, || {
                let mut em = Emitter { stage: &stage, tx: &tx, tokens: tokens_tx.as_ref(), shared: &sh, counters: &c, next_seq: 0 };
                let t = Instant::now();
                let r = src.run(&mut em);
                let blocked = Duration::from_nanos(c.blocked_send_ns.load(Ordering::Relaxed));
                add(&c.busy_ns, t.elapsed().saturating_sub(blocked));
                r.map_err(|(p, e)| Stop::Failed(p, e))
            })
        })
        .expect("spawning a thread");
    Flow {
        rx,
        tokens,
        shared,
        threads: vec![t],
        stages: vec![StageHandle { name: name.to_string(), workers: 1, counters }],
        started: Instant::now(),
    }
}

impl<T: Send + 'static, E: RuntimeError> Flow<T, E> {
    /// Add a stage run by `workers` threads, each with its own instance from `make`.
    pub fn stage<S, F>(mut self, name: &str, workers: usize, mut make: F) -> Flow<S::Out, E>
    where
        S: Stage<In = T, Error = E>,
        F: FnMut(usize) -> S,
    {
        let workers = workers.max(1);
        let cap = self.shared.capacity;
        let counters = Arc::new(Counters::default());
        let (out_tx, out_rx) = bounded::<Env<S::Out>>(cap);
        let spawn = |label: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(label).spawn(f).expect("spawning a thread")
        };
        if workers == 1 {
            let mut st = make(0);
            let (rx, sh, c, stage) = (self.rx, self.shared.clone(), counters.clone(), name.to_string());
            self.threads.push(spawn(
                format!("sluice-{name}"),
                Box::new(move || sh.guard(&stage, || run_worker(&mut st, &rx, &out_tx, &sh, &c, &stage))),
            ));
        } else {
            // dispatch in order with at most `window` items in flight, work, then reorder
            let window = 2 * workers + cap;
            let (slot_tx, slot_rx) = bounded::<()>(window);
            for _ in 0..window {
                let _ = slot_tx.send(());
            }
            let (work_tx, work_rx) = bounded::<Env<T>>(workers);
            let (done_tx, done_rx) = bounded::<Env<S::Out>>(window);
            {
                let (rx, sh, c, stage) = (self.rx, self.shared.clone(), counters.clone(), name.to_string());
                self.threads.push(spawn(
                    format!("sluice-{name}-dispatch"),
                    Box::new(move || {
                        sh.guard(&stage, || {
                            while let Some(env) = recv(&rx, &sh.cancel, &c)? {
                                recv::<_, E>(&slot_rx, &sh.cancel, &c)?;
                                send(&work_tx, env, &sh.cancel, &c)?;
                            }
                            Ok(())
                        })
                    }),
                ));
            }
            for w in 0..workers {
                let mut st = make(w);
                let (rx, tx, sh, c, stage) = (work_rx.clone(), done_tx.clone(), self.shared.clone(), counters.clone(), name.to_string());
                self.threads.push(spawn(
                    format!("sluice-{name}-{w}"),
                    Box::new(move || sh.guard(&stage, || run_worker(&mut st, &rx, &tx, &sh, &c, &stage))),
                ));
            }
            drop((work_rx, done_tx));
            let (sh, stage) = (self.shared.clone(), name.to_string());
            let c = Arc::new(Counters::default()); // the reorder thread's waits are not the stage's
            self.threads.push(spawn(
                format!("sluice-{name}-reorder"),
                Box::new(move || {
                    sh.guard(&stage, || {
                        let mut pending = BTreeMap::new();
                        let mut next = 0u64;
                        while let Some(env) = recv(&done_rx, &sh.cancel, &c)? {
                            pending.insert(env.seq, env.item);
                            while let Some(item) = pending.remove(&next) {
                                send(&out_tx, Env { seq: next, item }, &sh.cancel, &c)?;
                                let _ = slot_tx.send(());
                                next += 1;
                            }
                        }
                        Ok(())
                    })
                }),
            ));
        }
        self.stages.push(StageHandle { name: name.to_string(), workers, counters });
        Flow { rx: out_rx, tokens: self.tokens, shared: self.shared, threads: self.threads, stages: self.stages, started: self.started }
    }

    /// Finish the chain with a sink and wait for the run: the sink's output and the report,
    /// or the first error. Every thread has been joined when this returns.
    pub fn sink<K: Sink<In = T, Error = E>>(mut self, name: &str, sink: K) -> Result<(K::Output, RunReport), StageError<E>> {
        let counters = Arc::new(Counters::default());
        let output = Arc::new(Mutex::new(None));
        {
            let (rx, tokens, sh, c, stage, out) = (self.rx, self.tokens, self.shared.clone(), counters.clone(), name.to_string(), output.clone());
            let mut sink = Some(sink);
            self.threads.push(
                std::thread::Builder::new()
                    .name(format!("sluice-{name}"))
                    .spawn(move || {
                        sh.guard(&stage, || {
                            let mut k = sink.take().expect("sink used once");
                            while let Some(env) = recv(&rx, &sh.cancel, &c)? {
                                let n = c.items_in.fetch_add(1, Ordering::Relaxed) + 1;
                                sh.injected(&stage, n)?;
                                let t = Instant::now();
                                let r = k.consume(env.item);
                                add(&c.busy_ns, t.elapsed());
                                r.map_err(|(p, e)| Stop::Failed(p, e))?;
                                // the item is done: one more may come (its token was sent before it)
                                if let Some(tokens) = &tokens {
                                    let _ = tokens.try_recv();
                                }
                            }
                            if sh.cancel.is_cancelled() {
                                return Err(Stop::Cancelled);
                            }
                            let t = Instant::now();
                            let r = k.finish().map_err(|(p, e)| Stop::Failed(p, e))?;
                            add(&c.busy_ns, t.elapsed());
                            if let Ok(mut o) = out.lock() {
                                *o = Some(r);
                            }
                            Ok(())
                        })
                    })
                    .expect("spawning a thread"),
            );
        }
        self.stages.push(StageHandle { name: name.to_string(), workers: 1, counters });
        for t in self.threads {
            let _ = t.join(); // panics were caught inside
        }
        if let Some(err) = self.shared.first_error.lock().ok().and_then(|mut g| g.take()) {
            return Err(err);
        }
        let out = output.lock().ok().and_then(|mut g| g.take());
        let report = report(&self.stages, self.shared.capacity, self.started.elapsed());
        match out {
            Some(o) if !self.shared.cancel.is_cancelled() => Ok((o, report)),
            // cancelled from outside (a signal), or the sink never finished
            _ => Err(StageError { stage: name.to_string(), partition: None, error: E::cancelled() }),
        }
    }
}

fn run_worker<S: Stage>(
    st: &mut S,
    rx: &Receiver<Env<S::In>>,
    tx: &Sender<Env<S::Out>>,
    sh: &Shared<S::Error>,
    c: &Counters,
    stage: &str,
) -> Result<(), Stop<S::Error>> {
    while let Some(env) = recv(rx, &sh.cancel, c)? {
        let n = c.items_in.fetch_add(1, Ordering::Relaxed) + 1;
        sh.injected(stage, n)?;
        let t = Instant::now();
        let out = st.process(env.item);
        add(&c.busy_ns, t.elapsed());
        let out = out.map_err(|(p, e)| Stop::Failed(p, e))?;
        c.items_out.fetch_add(1, Ordering::Relaxed);
        c.rows_out.fetch_add(out.rows() as u64, Ordering::Relaxed);
        c.bytes_out.fetch_add(out.bytes() as u64, Ordering::Relaxed);
        send(tx, Env { seq: env.seq, item: out }, &sh.cancel, c)?;
    }
    Ok(())
}

fn report(stages: &[StageHandle], capacity: usize, wall: Duration) -> RunReport {
    let secs = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
    let stages: Vec<StageMetrics> = stages
        .iter()
        .map(|s| StageMetrics {
            stage: s.name.clone(),
            workers: s.workers,
            items_in: s.counters.items_in.load(Ordering::Relaxed),
            items_out: s.counters.items_out.load(Ordering::Relaxed),
            rows_out: s.counters.rows_out.load(Ordering::Relaxed),
            bytes_out: s.counters.bytes_out.load(Ordering::Relaxed),
            busy_s: secs(&s.counters.busy_ns),
            blocked_send_s: secs(&s.counters.blocked_send_ns),
            blocked_recv_s: secs(&s.counters.blocked_recv_ns),
        })
        .collect();
    let bottleneck = stages
        .iter()
        .max_by(|a, b| (a.busy_s / a.workers as f64).total_cmp(&(b.busy_s / b.workers as f64)))
        .map(|s| s.stage.clone());
    RunReport { stages, channel_capacity: capacity, bottleneck, wall_s: wall.as_secs_f64() }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum TestError {
        Panicked(String),
        Injected,
        Cancelled,
        Bad(u64),
    }

    impl RuntimeError for TestError {
        fn panicked(m: String) -> Self {
            TestError::Panicked(m)
        }
        fn injected(_: &str) -> Self {
            TestError::Injected
        }
        fn cancelled() -> Self {
            TestError::Cancelled
        }
    }

    /// An item that counts how many of its kind are alive: the memory the run holds.
    struct Tracked {
        n: u64,
        live: Arc<AtomicUsize>,
    }

    impl Tracked {
        fn new(n: u64, live: &Arc<AtomicUsize>, peak: &Arc<AtomicUsize>) -> Self {
            let now = live.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            Tracked { n, live: live.clone() }
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl Measure for Tracked {
        fn rows(&self) -> usize {
            1
        }
        fn bytes(&self) -> usize {
            1 << 20
        }
    }

    struct Numbers {
        count: u64, // u64::MAX: endless
        live: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }

    impl Source for Numbers {
        type Out = Tracked;
        type Error = TestError;
        fn run(&mut self, out: &mut Emitter<'_, Tracked, TestError>) -> Result<(), (Option<String>, TestError)> {
            for n in 0..self.count {
                if out.emit(Tracked::new(n, &self.live, &self.peak)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        }
    }

    /// Passes items on after a delay that varies by item, failing or panicking on request.
    struct Work {
        fail_at: Option<u64>,
        panic_at: Option<u64>,
        delay_us: u64,
    }

    impl Stage for Work {
        type In = Tracked;
        type Out = Tracked;
        type Error = TestError;
        fn process(&mut self, item: Tracked) -> Result<Tracked, (Option<String>, TestError)> {
            if self.fail_at == Some(item.n) {
                return Err((Some(format!("n={}", item.n)), TestError::Bad(item.n)));
            }
            if self.panic_at == Some(item.n) {
                panic!("boom at {}", item.n);
            }
            std::thread::sleep(Duration::from_micros(self.delay_us * ((item.n * 7919) % 5)));
            Ok(item)
        }
    }

    struct Collect {
        seen: Vec<u64>,
        delay: Duration,
    }

    impl Sink for Collect {
        type In = Tracked;
        type Output = Vec<u64>;
        type Error = TestError;
        fn consume(&mut self, item: Tracked) -> Result<(), (Option<String>, TestError)> {
            std::thread::sleep(self.delay);
            self.seen.push(item.n);
            Ok(())
        }
        fn finish(self) -> Result<Vec<u64>, (Option<String>, TestError)> {
            Ok(self.seen)
        }
    }

    fn budget(items: usize) -> Budget {
        Budget { channel_bytes: items << 20, item_bytes: 1 << 20, source_items: items, in_flight: 0 }
    }

    fn numbers(count: u64) -> (Numbers, Arc<AtomicUsize>) {
        let peak = Arc::new(AtomicUsize::new(0));
        (Numbers { count, live: Arc::new(AtomicUsize::new(0)), peak: peak.clone() }, peak)
    }

    #[test]
    fn a_slow_consumer_bounds_the_items_in_flight() {
        let (src, peak) = numbers(300);
        let (out, report) = source("src", src, budget(4), Cancel::default())
            .stage("work", 1, |_| Work { fail_at: None, panic_at: None, delay_us: 0 })
            .sink("slow", Collect { seen: vec![], delay: Duration::from_millis(1) })
            .unwrap();
        assert_eq!(out.len(), 300);
        assert_eq!(report.channel_capacity, 4);
        // two channels of 4, plus one item held by each of the three threads
        let bound = 2 * 4 + 3;
        assert!(peak.load(Ordering::SeqCst) <= bound, "peak {} > {bound}", peak.load(Ordering::SeqCst));
        let slow = report.stages.iter().find(|s| s.stage == "slow").unwrap();
        let src = report.stages.iter().find(|s| s.stage == "src").unwrap();
        assert!(src.blocked_send_s > 0.1, "the source waited on the slow sink: {src:?}");
        assert_eq!(report.bottleneck.as_deref(), Some("slow"), "{slow:?}");
    }

    #[test]
    fn a_source_that_reads_ahead_itself_gets_a_channel_of_its_own_size() {
        let (src, peak) = numbers(300);
        let budget = Budget { source_items: 1, ..budget(4) };
        let (out, _) = source("src", src, budget, Cancel::default())
            .stage("work", 1, |_| Work { fail_at: None, panic_at: None, delay_us: 0 })
            .sink("slow", Collect { seen: vec![], delay: Duration::from_millis(1) })
            .unwrap();
        assert_eq!(out.len(), 300);
        // the source's channel of 1, the stage's of 4, one item held by each of three threads
        let bound = 1 + 4 + 3;
        assert!(peak.load(Ordering::SeqCst) <= bound, "peak {} > {bound}", peak.load(Ordering::SeqCst));
    }

    #[test]
    fn several_workers_keep_the_input_order_and_bound_the_reorder_window() {
        let (src, peak) = numbers(500);
        let (out, report) = source("src", src, budget(2), Cancel::default())
            .stage("work", 4, |_| Work { fail_at: None, panic_at: None, delay_us: 200 })
            .sink("sink", Collect { seen: vec![], delay: Duration::ZERO })
            .unwrap();
        assert_eq!(out, (0..500).collect::<Vec<_>>());
        assert_eq!(report.stages[1].workers, 4);
        assert_eq!(report.stages[1].items_out, 500);
        // window (2*4 + 2) + the channels around it + one per thread
        assert!(peak.load(Ordering::SeqCst) <= 10 + 2 * 2 + 4 + 2 + 8, "peak {}", peak.load(Ordering::SeqCst));
    }

    #[test]
    fn in_flight_bounds_the_items_between_source_and_sink_whatever_the_channels_hold() {
        for (workers, in_flight) in [(1, 1), (4, 1), (4, 3)] {
            let (src, peak) = numbers(300);
            let budget = Budget { in_flight, ..budget(8) };
            let (out, _) = within_deadline(move || {
                source("src", src, budget, Cancel::default())
                    .stage("work", workers, |_| Work { fail_at: None, panic_at: None, delay_us: 100 })
                    .sink("slow", Collect { seen: vec![], delay: Duration::from_micros(300) })
                    .unwrap()
            });
            assert_eq!(out, (0..300).collect::<Vec<_>>(), "{workers} workers, {in_flight} in flight");
            // the items in flight, and the one the source has made and waits to emit; channels
            // of 8 and a window of 2*4 + 8 would hold far more
            let peak = peak.load(Ordering::SeqCst);
            assert!(peak <= in_flight + 1, "{workers} workers: peak {peak} > {in_flight} + 1");
        }
    }

    /// Run `f` (a run over an endless source) on a thread of its own and wait for it at most
    /// `DEADLINE`: a cancel bug fails the test instead of hanging `cargo test`.
    fn within_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        const DEADLINE: Duration = Duration::from_secs(60);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(out) => out,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the run did not stop within {DEADLINE:?}"),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the run panicked instead of returning its error"),
        }
    }

    #[test]
    fn the_first_error_cancels_an_endless_run_and_names_its_stage() {
        for workers in [1, 3] {
            let (src, _) = numbers(u64::MAX);
            let t = Instant::now();
            let err = within_deadline(move || {
                source("src", src, budget(2), Cancel::default())
                    .stage("work", workers, |_| Work { fail_at: Some(50), panic_at: None, delay_us: 0 })
                    .sink("sink", Collect { seen: vec![], delay: Duration::ZERO })
                    .unwrap_err()
            });
            assert_eq!(err.stage, "work");
            assert_eq!(err.partition.as_deref(), Some("n=50"));
            assert_eq!(err.error, TestError::Bad(50));
            assert!(t.elapsed() < Duration::from_secs(5));
        }
    }

    #[test]
    fn a_panic_is_an_error_not_a_hang() {
        let (src, _) = numbers(u64::MAX);
        let err = within_deadline(move || {
            source("src", src, budget(2), Cancel::default())
                .stage("work", 2, |_| Work { fail_at: None, panic_at: Some(10), delay_us: 0 })
                .sink("sink", Collect { seen: vec![], delay: Duration::ZERO })
                .unwrap_err()
        });
        assert_eq!(err.stage, "work");
        assert!(matches!(&err.error, TestError::Panicked(m) if m.contains("boom at 10")), "{:?}", err.error);
    }

    /// Cancels the run from outside (as a signal handler does) once it has seen `at` items.
    struct CancelAt {
        at: u64,
        cancel: Cancel,
        seen: u64,
    }

    impl Sink for CancelAt {
        type In = Tracked;
        type Output = u64;
        type Error = TestError;
        fn consume(&mut self, _: Tracked) -> Result<(), (Option<String>, TestError)> {
            self.seen += 1;
            if self.seen == self.at {
                self.cancel.cancel();
            }
            Ok(())
        }
        fn finish(self) -> Result<u64, (Option<String>, TestError)> {
            Ok(self.seen)
        }
    }

    #[test]
    fn an_outside_cancel_in_the_middle_of_a_run_stops_every_thread() {
        let (src, _) = numbers(u64::MAX);
        let cancel = Cancel::default();
        let err = within_deadline(move || {
            source("src", src, budget(2), cancel.clone())
                .stage("work", 2, |_| Work { fail_at: None, panic_at: None, delay_us: 0 })
                .sink("sink", CancelAt { at: 100, cancel, seen: 0 })
                .unwrap_err()
        });
        assert_eq!(err.error, TestError::Cancelled);
    }
}
