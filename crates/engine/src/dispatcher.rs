//! One claim loop per namespace per node. Waiting long-polls register their
//! free slots here; the namespace's loop claims for all of them in one
//! transaction and hands the steps out, so that database work follows the
//! work to hand out, not the number of waiting workers.
//!
//! ```text
//!  poll ──register──▶ waiting polls of "orders" (oldest first)
//!                          │ take (each poll at most once at a time)
//!  commit hook / NOTIFY ──▶ loop ──▶ store.step_claim_batch(slots)  ── one transaction
//!  next visibility time ──▶  │             │
//!  safety re-check ───────▶  │             └─▶ per poll: its steps, or back to waiting
//!                            └── queue drained: sleep until a wake-up, the queue's
//!                                next visibility time or the re-check interval
//! ```
//!
//! No lost wake-ups: a wake-up that arrives while the loop is claiming is
//! kept (a `Notify` permit) and starts another claim at once. A loop that
//! learned its queue has nothing visible for a set of handlers does not
//! claim again for each new poll of those handlers, only when woken, when a
//! hidden message (a retry's backoff, a lease) becomes visible, or at the
//! re-check interval.
//!
//! Failure: when a claim fails (the database is down), the polls it was for
//! get the error at once, as a poll that claimed for itself would; the loop
//! tries again at the next wake-up or re-check. Steps claimed for a poll that
//! went away (its request was dropped) are released at once, without
//! counting the attempt. The loop itself must never hold a poll forever: a
//! poll whose wait ends while a claim for it is in flight gets that claim's
//! outcome.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tasker_model::ClaimedStep;
use tasker_store::{ClaimBatch, ClaimSlot, Store};
use tokio::sync::{Notify, oneshot};

use crate::config::EngineConfig;

type Reply = Result<Vec<ClaimedStep>, tasker_store::Error>;

type Loops = Mutex<HashMap<String, Arc<Dispatcher>>>;

/// The claim loops of one node, one per namespace, started on first use.
pub struct Dispatchers {
    store: Arc<dyn Store>,
    config: Arc<EngineConfig>,
    loops: Arc<Loops>,
}

impl std::fmt::Debug for Dispatchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatchers")
            .field(
                "namespaces",
                &self.loops.lock().map(|l| l.len()).unwrap_or(0),
            )
            .finish()
    }
}

impl Dispatchers {
    pub fn new(store: Arc<dyn Store>, config: Arc<EngineConfig>) -> Self {
        Self {
            store,
            config,
            loops: Arc::default(),
        }
    }

    /// The loop of `namespace`, started if it is not running.
    fn dispatcher(&self, namespace: &str) -> Arc<Dispatcher> {
        let mut loops = self.loops.lock().expect("dispatchers lock");
        if let Some(existing) = loops.get(namespace) {
            return existing.clone();
        }
        let dispatcher = Arc::new(Dispatcher {
            namespace: namespace.to_owned(),
            waiting: Mutex::default(),
            wake: Notify::new(),
            known_empty: Mutex::default(),
            claims: AtomicU64::new(0),
            siblings: Arc::downgrade(&self.loops),
        });
        loops.insert(namespace.to_owned(), dispatcher.clone());
        tokio::spawn(
            dispatcher
                .clone()
                .run(self.store.clone(), self.config.clone()),
        );
        dispatcher
    }

    /// Wakes the loop of `namespace` (or every loop for `None`): steps may
    /// have become ready there.
    pub fn wake(&self, namespace: Option<&str>) {
        let loops = self.loops.lock().expect("dispatchers lock");
        match namespace {
            Some(ns) => {
                if let Some(dispatcher) = loops.get(ns) {
                    dispatcher.wake_up();
                }
            }
            None => loops.values().for_each(|d| d.wake_up()),
        }
    }

    /// Registers a poll with the loops of its namespaces and waits for its
    /// steps until `deadline`; returns empty when nothing came in time.
    pub async fn poll(
        &self,
        worker_id: &str,
        namespaces: &[String],
        handlers: &[String],
        max: u32,
        deadline: tokio::time::Instant,
    ) -> Reply {
        let (reply, mut replied) = oneshot::channel();
        let waiter = Arc::new(Waiter {
            slot: ClaimSlot {
                worker_id: worker_id.to_owned(),
                max,
                handlers: handlers.to_vec(),
            },
            namespaces: namespaces.to_vec(),
            state: Mutex::new(WaiterState {
                taken: false,
                expired: false,
                tried: false,
                reply: Some(reply),
            }),
        });
        // A poll that may find work gets at least one claim, however short
        // its wait (a wait of 0 means "look once").
        let mut will_look = false;
        for namespace in namespaces {
            will_look |= self.dispatcher(namespace).add(waiter.clone());
        }
        tokio::select! {
            outcome = &mut replied => return outcome.unwrap_or(Ok(Vec::new())),
            _ = tokio::time::sleep_until(deadline) => {}
        }
        // Answered now with nothing, or by the claim in flight (or due) for
        // it; an answer a claim sent meanwhile stands.
        waiter.expire(will_look);
        replied.await.unwrap_or(Ok(Vec::new()))
    }

    /// Ends every waiting poll with no steps (the node is shutting down).
    pub fn end_all(&self) {
        let loops: Vec<_> = self
            .loops
            .lock()
            .expect("dispatchers lock")
            .values()
            .cloned()
            .collect();
        for dispatcher in loops {
            let waiting: Vec<_> = dispatcher
                .waiting
                .lock()
                .expect("waiting lock")
                .drain(..)
                .collect();
            for waiter in waiting {
                waiter.expire(false);
            }
        }
    }

    /// Polls waiting on `namespace` right now (for tests and metrics).
    pub fn waiting(&self, namespace: &str) -> usize {
        self.loops
            .lock()
            .expect("dispatchers lock")
            .get(namespace)
            .map_or(0, |d| d.waiting_count())
    }

    /// Per namespace with a claim loop: claims made so far and polls waiting.
    pub fn stats(&self) -> Vec<(String, u64, usize)> {
        let loops = self.loops.lock().expect("dispatchers lock");
        let mut stats: Vec<_> = loops
            .values()
            .map(|d| {
                (
                    d.namespace.clone(),
                    d.claims.load(Ordering::Relaxed),
                    d.waiting_count(),
                )
            })
            .collect();
        stats.sort();
        stats
    }

    /// Claim transactions the loop of `namespace` has made so far.
    pub fn claims(&self, namespace: &str) -> u64 {
        self.loops
            .lock()
            .expect("dispatchers lock")
            .get(namespace)
            .map_or(0, |d| d.claims.load(Ordering::Relaxed))
    }
}

/// One namespace's waiting polls and its wake-up signal.
#[derive(Debug)]
struct Dispatcher {
    namespace: String,
    waiting: Mutex<VecDeque<Arc<Waiter>>>,
    wake: Notify,
    /// Handler sets (sorted; empty: every handler) for which a claim found
    /// nothing more visible, with no wake-up since: a new poll of one of
    /// them alone is no reason to claim again.
    known_empty: Mutex<HashSet<Vec<String>>>,
    /// Claim transactions this loop has made.
    claims: AtomicU64,
    /// The node's other loops (a poll of several namespaces waits in each).
    siblings: std::sync::Weak<Loops>,
}

impl Dispatcher {
    fn wake_up(&self) {
        self.known_empty.lock().expect("known empty lock").clear();
        self.wake.notify_one();
    }

    /// Adds a waiting poll; true when a claim will look for work for it
    /// (false when the queue is known to have nothing for its handlers).
    fn add(&self, waiter: Arc<Waiter>) -> bool {
        let handlers = waiter.handler_set();
        self.waiting.lock().expect("waiting lock").push_back(waiter);
        let known_empty = self.known_empty.lock().expect("known empty lock");
        // Nothing for every handler means nothing for these either.
        let look = !known_empty.contains(&handlers) && !known_empty.contains(&Vec::new());
        if look {
            self.wake.notify_one();
        }
        look
    }

    fn waiting_count(&self) -> usize {
        self.waiting
            .lock()
            .expect("waiting lock")
            .iter()
            .filter(|w| w.is_waiting())
            .count()
    }

    /// Takes waiting polls, oldest first, until their free slots reach
    /// `room`; drops polls that have ended.
    fn take(&self, room: u32) -> Vec<Arc<Waiter>> {
        let mut waiting = self.waiting.lock().expect("waiting lock");
        waiting.retain(|w| w.is_live());
        let mut taken = Vec::new();
        let mut slots = 0;
        for waiter in waiting.iter() {
            if slots >= room {
                break;
            }
            if waiter.try_take() {
                slots += waiter.slot.max;
                taken.push(waiter.clone());
            }
        }
        taken
    }

    /// The loop: claims for the waiting polls whenever there is reason to.
    async fn run(self: Arc<Self>, store: Arc<dyn Store>, config: Arc<EngineConfig>) {
        let mut sleep_for: Option<Duration> = None;
        loop {
            match sleep_for {
                Some(pause) => {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(pause) => {}
                    }
                }
                None => self.wake.notified().await,
            }
            if self.siblings.strong_count() == 0 {
                // The engine is gone: nothing can poll any more.
                return;
            }
            sleep_for = self.claim_while_full(&store, &config).await;
        }
    }

    /// Claims until the waiting polls are served or the queue has nothing
    /// more for them. Returns how long to sleep at most before looking again
    /// (`None`: until woken).
    async fn claim_while_full(
        &self,
        store: &Arc<dyn Store>,
        config: &EngineConfig,
    ) -> Option<Duration> {
        loop {
            let taken = self.take(config.max_claim_batch);
            if taken.is_empty() {
                // The loop now sleeps until woken, without the timer of the
                // queue's next visibility time, so what it knew to be empty
                // must not keep the next poll from waking it: a wake-up that
                // came while a claim was in flight (and found no poll to
                // claim for) would otherwise leave a retry whose backoff
                // ran out unclaimed while a poll waits for it.
                self.known_empty.lock().expect("known empty lock").clear();
                return None;
            }
            let slots: Vec<ClaimSlot> = taken.iter().map(|w| w.slot.clone()).collect();
            let room: u32 = slots.iter().map(|s| s.max).sum();
            let batch = ClaimBatch {
                namespace: self.namespace.clone(),
                lease_for: config.lease_duration,
                slots,
            };
            self.claims.fetch_add(1, Ordering::Relaxed);
            match store.step_claim_batch(batch).await {
                Ok(claimed) => {
                    let count: usize = claimed.steps.iter().map(Vec::len).sum();
                    for (waiter, steps) in taken.iter().zip(claimed.steps) {
                        if let Some(undelivered) = waiter.finish(Ok(steps)) {
                            release(store.clone(), undelivered);
                        }
                    }
                    if (count as u32) < room {
                        self.known_empty
                            .lock()
                            .expect("known empty lock")
                            .extend(taken.iter().map(|w| w.handler_set()));
                        for waiter in taken.iter().filter(|w| w.namespaces.len() > 1) {
                            self.offer_elsewhere(waiter);
                        }
                        let recheck = config.poll_recheck_interval;
                        return Some(claimed.next_visible_in.map_or(recheck, |d| {
                            // Whole-millisecond rounding must not wake it early.
                            (d + Duration::from_millis(1)).min(recheck)
                        }));
                    }
                }
                Err(error) => {
                    tracing::warn!(namespace = %self.namespace, %error, "claim for waiting polls failed");
                    for waiter in &taken {
                        waiter.finish(Err(error.duplicate()));
                    }
                    return Some(config.poll_recheck_interval);
                }
            }
        }
    }

    /// Wakes the loops of `waiter`'s other namespaces: this one had it taken
    /// and found nothing, and a wake-up they skipped it for may be pending.
    fn offer_elsewhere(&self, waiter: &Waiter) {
        let Some(loops) = self.siblings.upgrade() else {
            return;
        };
        let loops = loops.lock().expect("dispatchers lock");
        for namespace in waiter.namespaces.iter().filter(|n| **n != self.namespace) {
            if let Some(dispatcher) = loops.get(namespace) {
                dispatcher.wake_up();
            }
        }
    }
}

/// One waiting long-poll.
#[derive(Debug)]
struct Waiter {
    slot: ClaimSlot,
    namespaces: Vec<String>,
    state: Mutex<WaiterState>,
}

#[derive(Debug)]
struct WaiterState {
    /// A loop is claiming for it right now.
    taken: bool,
    /// Its wait ended: the next outcome ends it, even an empty one.
    expired: bool,
    /// A claim has looked for work for it.
    tried: bool,
    /// `None` once it has its answer.
    reply: Option<oneshot::Sender<Reply>>,
}

impl Waiter {
    /// Its handlers, sorted (empty: every handler).
    fn handler_set(&self) -> Vec<String> {
        let mut handlers = self.slot.handlers.clone();
        handlers.sort_unstable();
        handlers.dedup();
        handlers
    }

    /// Still waiting for an answer, and its poll still listening.
    fn is_live(&self) -> bool {
        let state = self.state.lock().expect("waiter lock");
        state.reply.as_ref().is_some_and(|r| !r.is_closed())
    }

    fn is_waiting(&self) -> bool {
        let state = self.state.lock().expect("waiter lock");
        state.reply.as_ref().is_some_and(|r| !r.is_closed()) && !state.taken && !state.expired
    }

    /// Takes it for a claim unless one is in flight for it already. A poll
    /// whose wait ended is still taken while it waits for its first look.
    fn try_take(&self) -> bool {
        let mut state = self.state.lock().expect("waiter lock");
        let free = state.reply.as_ref().is_some_and(|r| !r.is_closed()) && !state.taken;
        if free {
            state.taken = true;
        }
        free
    }

    /// Ends the wait: answers it with nothing now, unless a claim for it is
    /// in flight (or, with `until_tried`, has not looked for it yet), whose
    /// outcome will be its answer. An answer already sent stands.
    fn expire(&self, until_tried: bool) {
        let mut state = self.state.lock().expect("waiter lock");
        state.expired = true;
        if state.taken || (until_tried && !state.tried) {
            return;
        }
        if let Some(reply) = state.reply.take() {
            let _ = reply.send(Ok(Vec::new()));
        }
    }

    /// A claim for it ended. Steps go to the poll; an empty claim leaves it
    /// waiting (unless its wait ended). Returns steps whose poll went away.
    fn finish(&self, outcome: Reply) -> Option<Vec<ClaimedStep>> {
        let mut state = self.state.lock().expect("waiter lock");
        state.taken = false;
        state.tried = true;
        if matches!(&outcome, Ok(steps) if steps.is_empty()) && !state.expired {
            return None;
        }
        let Some(reply) = state.reply.take() else {
            // Already answered: steps claimed for it must not be lost.
            return outcome.ok().filter(|steps| !steps.is_empty());
        };
        match reply.send(outcome) {
            Ok(()) => None,
            Err(Ok(steps)) if !steps.is_empty() => Some(steps),
            Err(_) => None,
        }
    }
}

/// Hands back steps leased for a poll that went away, without counting the
/// attempt, so that they need not wait out their lease.
fn release(store: Arc<dyn Store>, steps: Vec<ClaimedStep>) {
    tokio::spawn(async move {
        for step in steps {
            if let Err(error) = store.step_release(&step.lease).await {
                tracing::warn!(step = %step.lease.step_id, %error, "cannot release a step whose poll went away");
            }
        }
    });
}
