//! Seeded random schedules of claims, results, failures, heartbeats, lost
//! workers and operator commands over every example template. The harness
//! checks its invariants after each operation; here every task must end, and
//! end in the state its steps imply.

use tasker_model::{ClaimOutcome, HeartbeatOutcome, Lease, StepState, TaskState};

use crate::harness::{Harness, at_ms, fatal, retryable};

const EXAMPLES: [&str; 5] = [
    include_str!("../../../../templates/linear.yaml"),
    include_str!("../../../../templates/diamond.yaml"),
    include_str!("../../../../templates/mixed_dag.yaml"),
    include_str!("../../../../templates/tree.yaml"),
    include_str!("../../../../templates/order_fulfillment.yaml"),
];

/// xorshift64*: small, seeded and good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())])
    }
}

fn simulate(yaml: &str, seed: u64) -> TaskState {
    let (mut h, _) = Harness::create(yaml);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut now_ms: i64 = 0;
    let mut leases: Vec<Lease> = Vec::new();
    let mut operator_commands = 0;

    for _ in 0..5_000 {
        let now = at_ms(now_ms);
        if h.task.state.is_terminal() {
            let failed: Vec<usize> = (0..h.steps.len())
                .filter(|&i| h.steps[i].state == StepState::Failed)
                .collect();
            if h.task.state != TaskState::Failed || operator_commands >= 3 {
                return h.task.state;
            }
            operator_commands += 1;
            let i = rng.pick(&failed).unwrap();
            let (result, _) = match rng.below(3) {
                0 => h.operate(now, |run| run.retry_step(i, now)),
                1 => h.operate(now, |run| run.resolve_step(i, None, now)),
                _ => return h.task.state,
            };
            result.unwrap();
            continue;
        }
        match rng.below(20) {
            // A worker reads a visible message, or waits for the next one.
            0..=7 => {
                let visible: Vec<i64> = h
                    .queue
                    .iter()
                    .filter(|(_, m)| m.visible_at <= now)
                    .map(|(&id, _)| id)
                    .collect();
                match rng.pick(&visible) {
                    Some(msg_id) => {
                        let name = h.template.steps[h.queue[&msg_id].step].name.clone();
                        if let ClaimOutcome::Claimed(lease) = h.deliver(&name, msg_id, now).0 {
                            leases.push(lease);
                        }
                    }
                    // Nothing visible: wait for the next message, but not
                    // always, so running workers get to report first.
                    None if rng.below(4) == 0 => {
                        let next = h.queue.values().map(|m| m.visible_at).min().unwrap();
                        now_ms += (next - now).num_milliseconds().max(1);
                    }
                    None => now_ms += 1_000,
                }
            }
            8..=12 => {
                if let Some(lease) = rng.pick(&leases) {
                    let _ = h.complete(&lease, now);
                }
            }
            13..=14 => {
                if let Some(lease) = rng.pick(&leases) {
                    let error = if rng.below(5) == 0 {
                        fatal("no")
                    } else {
                        retryable("flaky")
                    };
                    let _ = h.fail(&lease, error, now);
                }
            }
            15..=16 => {
                if let Some(lease) = rng.pick(&leases) {
                    let outcome = h.heartbeat(&lease, now).0;
                    assert_ne!(outcome, Ok(HeartbeatOutcome::Cancelled));
                }
            }
            17..=18 => now_ms += rng.below(40_000) as i64,
            _ => {
                if rng.below(40) == 0 {
                    h.operate(now, |run| run.cancel("simulated operator", now))
                        .0
                        .unwrap();
                }
            }
        }
    }
    panic!(
        "seed {seed}: task still {} after 5000 operations",
        h.task.state
    );
}

#[test]
fn random_schedules_keep_every_invariant_and_always_end() {
    let mut endings = std::collections::BTreeMap::new();
    for (t, yaml) in EXAMPLES.iter().enumerate() {
        for seed in 0..150 {
            let end = simulate(yaml, (t as u64) << 32 | seed);
            *endings.entry(end.as_str()).or_insert(0) += 1;
        }
    }
    // The schedules must reach every ending, or they test less than they seem.
    for state in ["complete", "failed", "cancelled"] {
        assert!(endings.get(state).copied().unwrap_or(0) > 10, "{endings:?}");
    }
}
