//! The run's queue of batches waiting for a sandbox. Re-runs (hang splits,
//! retries, isolation of crashers) go ahead of fresh work, heaviest expected
//! batch first (ties in insertion order); fresh work goes in the order the
//! plan gave it (already heaviest first, see `schedule::plan`). The dispatch
//! order is deterministic.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use crate::events::BatchKind;

#[derive(Clone, Debug)]
pub struct PendingBatch {
    /// Why it runs; higher kinds are dispatched first.
    pub kind: BatchKind,
    pub expected: Duration,
    /// Indexes into the run's test table.
    pub tests: Vec<usize>,
    seq: u64,
}

impl PartialEq for PendingBatch {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for PendingBatch {}
impl PartialOrd for PendingBatch {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PendingBatch {
    fn cmp(&self, other: &Self) -> Ordering {
        // Earlier insertions first: a max-heap wants the smaller seq to be "greater".
        let fifo = other.seq.cmp(&self.seq);
        self.kind
            .cmp(&other.kind)
            .then(if self.kind == BatchKind::Fresh {
                // Fresh work goes in the order the plan chose (heaviest first,
                // except batches the plan wants to run early).
                fifo
            } else {
                self.expected.cmp(&other.expected).then(fifo)
            })
    }
}

#[derive(Default, Debug)]
pub struct BatchQueue {
    heap: BinaryHeap<PendingBatch>,
    next_seq: u64,
}

impl BatchQueue {
    pub fn push(&mut self, kind: BatchKind, expected: Duration, tests: Vec<usize>) {
        if tests.is_empty() {
            return;
        }
        self.heap.push(PendingBatch {
            kind,
            expected,
            tests,
            seq: self.next_seq,
        });
        self.next_seq += 1;
    }

    pub fn pop(&mut self) -> Option<PendingBatch> {
        self.heap.pop()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Replace each queued batch of fresh work by the parts `split` returns
    /// for its tests (in its place in the order; `None` keeps it whole).
    pub fn split_fresh(&mut self, mut split: impl FnMut(&[usize]) -> Option<Vec<Vec<usize>>>) {
        let mut all: Vec<PendingBatch> = std::mem::take(&mut self.heap).into_vec();
        all.sort_by_key(|b| b.seq);
        let mut next = 0;
        for b in all {
            let parts = match b.kind {
                BatchKind::Fresh => split(&b.tests),
                _ => None,
            };
            match parts {
                Some(parts) if parts.len() > 1 => {
                    let total = b.tests.len().max(1) as u32;
                    for part in parts {
                        let expected = b.expected / total * part.len() as u32;
                        self.heap.push(PendingBatch {
                            kind: b.kind,
                            expected,
                            tests: part,
                            seq: next,
                        });
                        next += 1;
                    }
                }
                _ => {
                    self.heap.push(PendingBatch { seq: next, ..b });
                    next += 1;
                }
            }
        }
        self.next_seq = next;
    }

    /// Remove everything (cancellation), returning the tests that were waiting.
    pub fn drain_tests(&mut self) -> Vec<usize> {
        self.heap.drain().flat_map(|b| b.tests).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reruns_first_heaviest_first_then_fresh_work_in_plan_order() {
        let mut q = BatchQueue::default();
        let s = Duration::from_secs;
        q.push(BatchKind::Fresh, s(1), vec![1]);
        q.push(BatchKind::Fresh, s(5), vec![2]);
        q.push(BatchKind::Fresh, s(5), vec![3]);
        q.push(BatchKind::Retry, s(1), vec![4]);
        q.push(BatchKind::Retry, s(2), vec![5]);
        q.push(BatchKind::Isolation, s(9), vec![6]);
        q.push(BatchKind::HangSplit, s(0), vec![7]);
        q.push(BatchKind::Fresh, s(0), vec![]);
        let order: Vec<usize> = std::iter::from_fn(|| q.pop()).map(|b| b.tests[0]).collect();
        assert_eq!(order, vec![7, 5, 4, 6, 1, 2, 3]);
    }
}
