//! Least-loaded assignment: the one loop behind planning (tests onto
//! workers), splitting re-runs (tests into parts) and the planned makespan
//! (batches onto workers).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// `n` bins, each with a load; [`Loads::least`] is the one with the smallest
/// load (ties: fewer items, then the lower index), so that equal or zero
/// loads still spread round-robin.
#[derive(Clone, Debug)]
pub struct Loads {
    heap: BinaryHeap<Reverse<(Duration, usize, usize)>>,
}

impl Loads {
    /// `n` empty bins (at least one).
    pub fn new(n: usize) -> Loads {
        Loads::starting_at(&vec![Duration::ZERO; n.max(1)])
    }

    /// One bin per initial load.
    pub fn starting_at(initial: &[Duration]) -> Loads {
        Loads {
            heap: initial
                .iter()
                .enumerate()
                .map(|(i, &load)| Reverse((load, 0, i)))
                .collect(),
        }
    }

    /// Add `load` to the least-loaded bin; returns its index.
    pub fn add_to_least(&mut self, load: Duration) -> usize {
        let Reverse((current, items, i)) = self.heap.pop().expect("at least one bin");
        self.heap.push(Reverse((current + load, items + 1, i)));
        i
    }

    /// The largest load: the makespan.
    pub fn max(&self) -> Duration {
        self.heap
            .iter()
            .map(|Reverse((load, _, _))| *load)
            .max()
            .unwrap_or_default()
    }
}

/// Split `items` (each with its expected duration) into at most `parts`
/// groups of similar total duration: longest first, each to the
/// least-loaded part. Returns each non-empty part with its total.
pub fn split_balanced<T: Copy>(items: &[(T, Duration)], parts: usize) -> Vec<(Vec<T>, Duration)> {
    let parts = parts.clamp(1, items.len().max(1));
    let mut sorted: Vec<&(T, Duration)> = items.iter().collect();
    // Stable: equal durations keep their order.
    sorted.sort_by_key(|item| std::cmp::Reverse(item.1));
    let mut loads = Loads::new(parts);
    let mut out: Vec<(Vec<T>, Duration)> = vec![(Vec::new(), Duration::ZERO); parts];
    for &(item, d) in sorted {
        let i = loads.add_to_least(d);
        out[i].0.push(item);
        out[i].1 += d;
    }
    out.retain(|(part, _)| !part.is_empty());
    out
}

/// The makespan of running `durations` in this order on workers that start
/// at the times `start` gives (one per worker), each item going to whichever
/// worker frees up first.
pub fn makespan_from(
    durations: impl IntoIterator<Item = Duration>,
    start: &[Duration],
) -> Duration {
    let mut loads = match start {
        [] => Loads::new(1),
        _ => Loads::starting_at(start),
    };
    for d in durations {
        loads.add_to_least(d);
    }
    loads.max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn splits_longest_first_onto_the_least_loaded_part() {
        let items = [(1, s(1)), (2, s(5)), (3, s(3)), (4, s(3)), (5, s(0))];
        let parts = split_balanced(&items, 2);
        assert_eq!(parts, vec![(vec![2, 1, 5], s(6)), (vec![3, 4], s(6))]);
        // More parts than items: one item each.
        assert_eq!(split_balanced(&items[..2], 9).len(), 2);
        // Zero durations still spread.
        let zeros = [(1, s(0)), (2, s(0)), (3, s(0))];
        assert_eq!(split_balanced(&zeros, 3).len(), 3);
    }

    #[test]
    fn makespan_is_list_scheduling_in_the_given_order_from_each_start() {
        let makespan =
            |d: &[Duration], workers| makespan_from(d.iter().copied(), &vec![s(0); workers]);
        assert_eq!(makespan(&[s(4), s(3), s(2), s(1)], 2), s(5));
        assert_eq!(makespan(&[s(1), s(1)], 0), s(2));
        assert_eq!(makespan(&[], 3), s(0));
        // A worker that starts late takes less.
        assert_eq!(makespan_from([s(4), s(3)], &[s(0), s(2)]), s(5));
    }
}
