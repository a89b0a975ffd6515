//! Phones' syncs sent to the server: a schedule of small syncs (each phone pushing a few of its
//! recorded interactions at a time, phones taking turns), run closed loop (a fixed number of
//! clients, each sending its next sync when the last is answered: the capacity) or open loop
//! (syncs sent at a fixed rate whether or not earlier ones were answered, each one's latency
//! counted from the moment it was scheduled, so queueing in the server is not hidden).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tournee_sync_core::sync::wire::{self, DocRequest, Limits, ResponseBody, SyncRequest};

use crate::measure::Latencies;
use crate::town::Phone;

/// One phone as the schedule sends its syncs: its token, its pushes, and the cursor of its last
/// answer (the next sync starts from it).
struct Sender {
    token: String,
    pushes: Vec<DocRequest>,
    cursor: Mutex<(Option<u64>, Option<u64>)>,
}

/// The syncs to send, in order: phone `p`'s pushes `range`. Phases run one after the other on
/// one schedule, each taking the syncs that follow the previous phase's.
pub struct Schedule {
    senders: Vec<Sender>,
    syncs: Vec<(usize, std::ops::Range<usize>)>,
    next: AtomicUsize,
}

/// What one phase of syncs measured.
pub struct Phase {
    pub latencies: Latencies,
    /// Syncs answered with success, and interactions they acknowledged.
    pub answered: usize,
    pub acknowledged: usize,
    /// Syncs refused or failed (status and transport errors).
    pub failed: usize,
    /// From the first sync sent (or scheduled) to the last answer.
    pub wall: Duration,
    /// From the first sync sent (or scheduled) to the last one sent.
    pub sending: Duration,
    /// The schedule ran out before the phase's time was up.
    pub ran_out: bool,
}

impl Phase {
    /// Syncs answered per second over the phase.
    pub fn answered_per_second(&self) -> f64 {
        self.answered as f64 / self.wall.as_secs_f64()
    }
}

impl Schedule {
    /// Every phone's pushes in syncs of `per_sync`, phones taking turns.
    pub fn new(phones: &[Phone], per_sync: usize) -> Arc<Schedule> {
        let per_sync = per_sync.max(1);
        let mut syncs = Vec::new();
        let most = phones.iter().map(|p| p.pushes.len()).max().unwrap_or(0);
        for start in (0..most).step_by(per_sync) {
            for (p, phone) in phones.iter().enumerate() {
                if start < phone.pushes.len() {
                    syncs.push((p, start..(start + per_sync).min(phone.pushes.len())));
                }
            }
        }
        Arc::new(Schedule {
            senders: phones
                .iter()
                .map(|p| Sender {
                    token: p.token.clone(),
                    pushes: p.pushes.clone(),
                    cursor: Mutex::new((p.since, p.history)),
                })
                .collect(),
            syncs,
            next: AtomicUsize::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.syncs.len()
    }

    /// How many of each phone's pushes the phases so far have sent (for the floor).
    pub fn pushed_per_phone(&self) -> Vec<usize> {
        let mut pushed = vec![0; self.senders.len()];
        let sent = self.next.load(Ordering::SeqCst).min(self.syncs.len());
        for (p, range) in &self.syncs[..sent] {
            pushed[*p] = pushed[*p].max(range.end);
        }
        pushed
    }

    /// The next sync's index, if any is left.
    fn take(&self) -> Option<usize> {
        let j = self.next.fetch_add(1, Ordering::SeqCst);
        (j < self.syncs.len()).then_some(j)
    }

    /// Sends sync `j` and waits for its answer: the interactions it acknowledged, or `None`
    /// when it failed.
    async fn send(&self, client: &reqwest::Client, base: &str, j: usize) -> Option<usize> {
        let (p, range) = &self.syncs[j];
        let sender = &self.senders[*p];
        let (since, history) = *sender.cursor.lock().unwrap();
        let frame = wire::encode_request(&SyncRequest {
            since,
            history,
            docs: sender.pushes[range.clone()].to_vec(),
        });
        let response = client
            .post(format!("{base}/v1/sync"))
            .bearer_auth(&sender.token)
            .body(frame)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let answer =
            wire::decode_response(&response.bytes().await.ok()?, &Limits::default()).unwrap();
        {
            let mut cursor = sender.cursor.lock().unwrap();
            if cursor.0 < Some(answer.cursor) {
                *cursor = (Some(answer.cursor), answer.history);
            }
        }
        // Acknowledged: the pushed documents answered with an update (others may come as news).
        let pushed = &sender.pushes[range.clone()];
        Some(
            answer
                .docs
                .iter()
                .filter(|d| matches!(d.body, ResponseBody::Update { .. }))
                .filter(|d| pushed.iter().any(|p| p.doc == d.doc))
                .count(),
        )
    }

    /// Closed loop: `clients` clients, each sending its next sync as soon as its last one is
    /// answered, for `duration` (or until the schedule runs out).
    /// Client `k` sends to `bases[k % bases.len()]` (several instances of the server share the
    /// load in turn).
    pub async fn closed_loop(
        self: &Arc<Self>,
        client: &reqwest::Client,
        bases: &[String],
        clients: usize,
        duration: Duration,
    ) -> Phase {
        let started = Instant::now();
        let mut workers = Vec::new();
        for k in 0..clients {
            let base = bases[k % bases.len()].clone();
            let (schedule, client) = (self.clone(), client.clone());
            workers.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while started.elapsed() < duration {
                    let Some(j) = schedule.take() else { break };
                    let sent = Instant::now();
                    let acknowledged = schedule.send(&client, &base, j).await;
                    outcomes.push((sent.elapsed(), acknowledged, sent - started));
                }
                outcomes
            }));
        }
        let mut outcomes = Vec::new();
        for worker in workers {
            outcomes.extend(worker.await.unwrap());
        }
        let sending = outcomes.iter().map(|o| o.2).max().unwrap_or_default();
        phase(
            outcomes.into_iter().map(|(l, a, _)| (l, a)).collect(),
            started.elapsed(),
            sending,
            self.next.load(Ordering::SeqCst) >= self.len() && started.elapsed() < duration,
        )
    }

    /// Open loop: one sync every `1 / rate` seconds for `duration`, sent on schedule whatever
    /// the server has answered; each latency runs from the sync's scheduled time.
    pub async fn open_loop(
        self: &Arc<Self>,
        client: &reqwest::Client,
        base: &str,
        rate: f64,
        duration: Duration,
    ) -> Phase {
        let started = tokio::time::Instant::now();
        let mut in_flight = Vec::new();
        let mut ran_out = false;
        for k in 0.. {
            let at = started + Duration::from_secs_f64(k as f64 / rate);
            if at - started >= duration {
                break;
            }
            let Some(j) = self.take() else {
                ran_out = true;
                break;
            };
            tokio::time::sleep_until(at).await;
            let (schedule, client, base) = (self.clone(), client.clone(), base.to_string());
            in_flight.push(tokio::spawn(async move {
                let acknowledged = schedule.send(&client, &base, j).await;
                (at.elapsed(), acknowledged)
            }));
        }
        let sending = started.elapsed();
        let mut outcomes = Vec::new();
        for sync in in_flight {
            outcomes.push(sync.await.unwrap());
        }
        phase(outcomes, started.elapsed(), sending, ran_out)
    }
}

fn phase(
    outcomes: Vec<(Duration, Option<usize>)>,
    wall: Duration,
    sending: Duration,
    ran_out: bool,
) -> Phase {
    let answered: Vec<_> = outcomes.iter().filter(|o| o.1.is_some()).collect();
    Phase {
        answered: answered.len(),
        acknowledged: answered.iter().filter_map(|o| o.1).sum(),
        failed: outcomes.len() - answered.len(),
        latencies: Latencies::new(outcomes.iter().map(|o| o.0).collect()),
        wall,
        sending,
        ran_out,
    }
}

#[cfg(test)]
mod tests {
    use tournee_sync_core::sync::wire::RequestBody;
    use tournee_sync_core::DocId;

    use super::*;

    fn phone(device: u32, items: usize) -> Phone {
        Phone {
            token: format!("token-{device}"),
            docs: Vec::new(),
            pushes: (0..items)
                .map(|i| DocRequest {
                    doc: DocId::item(&tournee_sync_core::fixtures::s10(device * 100 + i as u32)),
                    body: RequestBody::Fetch,
                })
                .collect(),
            changes: Vec::new(),
            since: None,
            history: None,
        }
    }

    #[test]
    fn every_push_is_scheduled_once_in_order_phones_taking_turns() {
        let schedule = Schedule::new(&[phone(0, 7), phone(1, 3), phone(2, 0)], 3);
        let syncs = schedule.syncs.to_vec();
        assert_eq!(syncs, vec![(0, 0..3), (1, 0..3), (0, 3..6), (0, 6..7)]);
        assert_eq!(schedule.pushed_per_phone(), vec![0, 0, 0]);
        schedule.take();
        schedule.take();
        schedule.take();
        assert_eq!(schedule.pushed_per_phone(), vec![6, 3, 0]);
        schedule.take();
        assert_eq!(schedule.take(), None);
        assert_eq!(schedule.pushed_per_phone(), vec![7, 3, 0]);
    }

    #[test]
    fn percentiles_are_ranks_of_the_sorted_latencies() {
        let latencies = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(latencies.percentile(0.5), Duration::from_millis(50));
        assert_eq!(latencies.percentile(0.99), Duration::from_millis(99));
        assert_eq!(latencies.percentile(1.0), Duration::from_millis(100));
        assert_eq!(latencies.percentile(0.0), Duration::from_millis(1));
        assert_eq!(Latencies::new(Vec::new()).percentile(0.99), Duration::ZERO);
    }
}
