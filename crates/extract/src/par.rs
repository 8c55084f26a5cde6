//! Blocking work spread over a few plain threads, results in order.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` over `items` on `workers` threads of its own (at least one, at most one per item), the
/// results in `items`' order; each thread takes the next item when done with its last. A
/// panic in `f` is resumed in the caller. Plain threads, not rayon's pool: a rayon thread
/// that waits on another pool (Polars') runs other queued items in the meantime, so far
/// more items than workers can be in flight at once.
pub fn map_ordered<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if workers <= 1 || items.len() <= 1 {
        return items.iter().map(f).collect(); // on this thread: no thread to start for one
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..workers.min(items.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::map_ordered;

    #[test]
    fn map_ordered_keeps_the_items_order_whatever_the_threads() {
        let items: Vec<u64> = (0..200).collect();
        for workers in [0, 1, 3, 16, 500] {
            // uneven work, so the threads finish out of order
            let got = map_ordered(&items, workers, |&i| {
                std::hint::black_box((0..(i % 7) * 1000).sum::<u64>());
                i
            });
            assert_eq!(got, items, "{workers} workers");
        }
        assert!(map_ordered(&Vec::<u8>::new(), 2, |&b| b).is_empty());
    }
}
