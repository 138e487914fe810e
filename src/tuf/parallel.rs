//! Mapping a list over the machine's cores, results in the list's order.
//!
//! Used where verification has many independent pieces of equal cost (the roles one delegator
//! delegates to: one signature check each); the caller keeps the order in which results are
//! used, so the outcome never depends on the scheduling.

/// Most threads used for one map.
const MAX_THREADS: usize = 8;

/// The cores this process may use, asked once: the standard library reads the cgroup's CPU
/// quota from files each time it is asked (make bench, 1,000 delegated roles: asking once per
/// role file was a third of the run's CPU time).
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `items.into_iter().map(f).collect()`, spread over up to the available cores when each
/// thread gets at least `min_per_thread` items (below that, starting a thread costs more than
/// it saves). The items are handed out in batches as threads come free, so a thread that
/// shares its core with other work, or meets the slower items, takes fewer of them (a fixed
/// half each left one thread waiting 3 ms for the other on 1,000 delegated roles). A panic in
/// `f` is resumed on the calling thread, as it would be without threads.
pub fn map_in_order<T, R, F>(items: Vec<T>, min_per_thread: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let threads = cores()
        .min(items.len() / min_per_thread.max(1))
        .min(MAX_THREADS);
    if threads < 2 {
        return items.into_iter().map(f).collect();
    }
    // Batches shrink as the list runs out (a quarter of what is left per thread, then down to
    // one item): the first are large enough to cost nothing to hand out, the last small enough
    // that no thread waits long for another at the end (equal batches of 63 roles had left one
    // thread idle for up to 3 ms on 1,000 delegated roles).
    let mut rest = items.into_iter();
    let batches: Vec<std::sync::Mutex<Option<Vec<T>>>> = batch_sizes(rest.len(), threads)
        .into_iter()
        .map(|size| std::sync::Mutex::new(Some(rest.by_ref().take(size).collect())))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let f = &f;
    let work = || {
        let mut done: Vec<(usize, Vec<R>)> = Vec::new();
        loop {
            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(slot) = batches.get(k) else {
                return done;
            };
            // Each batch is taken exactly once (its index is handed out once); a poisoned lock
            // only means another thread panicked, which is resumed below.
            let batch = match slot.lock() {
                Ok(mut b) => b.take(),
                Err(poisoned) => poisoned.into_inner().take(),
            };
            if let Some(batch) = batch {
                done.push((k, batch.into_iter().map(f).collect()));
            }
        }
    };
    let mut results: Vec<Option<Vec<R>>> = (0..batches.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        // The calling thread takes batches too.
        for (k, part) in work() {
            results[k] = Some(part);
        }
        for h in handles {
            match h.join() {
                Ok(parts) => {
                    for (k, part) in parts {
                        results[k] = Some(part);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    results.into_iter().flatten().flatten().collect()
}

/// The sizes of the batches `len` items are handed out in to `threads` threads: a quarter of
/// what is left per thread each time, so they shrink to single items.
fn batch_sizes(len: usize, threads: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = len;
    while left > 0 {
        let size = left.div_ceil(threads.max(1) * 4);
        sizes.push(size);
        left -= size;
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items_whatever_the_threads() {
        for n in [0usize, 1, 2, 3, 15, 16, 17, 100, 1001] {
            let items: Vec<usize> = (0..n).collect();
            let out = map_in_order(items, 4, |i| i * 3);
            assert_eq!(out, (0..n).map(|i| i * 3).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn work_is_spread_over_threads_when_there_is_enough() {
        if cores() < 2 {
            return;
        }
        let main = std::thread::current().id();
        // Each item takes a while, as a signature check does: the started thread is running
        // long before the calling thread could take every batch.
        let on_main = map_in_order((0..64).collect(), 8, |_| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            std::thread::current().id() == main
        });
        assert!(
            on_main.iter().any(|m| *m),
            "the calling thread takes a share"
        );
        assert!(on_main.iter().any(|m| !*m), "other threads take the rest");
        let few = map_in_order((0..7).collect(), 8, |_| std::thread::current().id() == main);
        assert!(
            few.iter().all(|m| *m),
            "too few items: no thread is started"
        );
    }

    #[test]
    fn a_thread_that_is_held_up_takes_fewer_items() {
        if cores() < 2 {
            return;
        }
        // The calling thread's first item, whichever it is, takes 200 ms: the other thread
        // does the rest meanwhile.
        let main = std::thread::current().id();
        let slept = std::sync::atomic::AtomicBool::new(false);
        let on_main = map_in_order((0..64).collect(), 8, |_: u32| {
            let here = std::thread::current().id() == main;
            if here && !slept.swap(true, std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            here
        });
        assert!(
            on_main.iter().filter(|m| **m).count() <= 16,
            "the held-up thread took {} of 64",
            on_main.iter().filter(|m| **m).count()
        );
    }

    #[test]
    fn batches_shrink_to_single_items_at_the_end() {
        for (len, threads) in [(1, 2), (7, 2), (64, 2), (1000, 2), (1000, 8), (100_000, 8)] {
            let sizes = batch_sizes(len, threads);
            assert_eq!(sizes.iter().sum::<usize>(), len);
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
            assert_eq!(sizes.last(), Some(&1), "{sizes:?}");
            assert!(sizes[0] <= len.div_ceil(threads * 4));
            // Few enough to hand out at no cost.
            assert!(
                sizes.len() <= threads * 4 * 16,
                "{len}/{threads}: {}",
                sizes.len()
            );
        }
        assert_eq!(batch_sizes(0, 2), Vec::<usize>::new());
        let sizes = batch_sizes(1000, 2);
        assert_eq!(sizes[0], 125);
        assert!(sizes.iter().rev().take(4).all(|s| *s == 1), "{sizes:?}");
    }

    #[test]
    #[should_panic(expected = "item 50")]
    fn a_panic_in_a_worker_reaches_the_caller() {
        map_in_order((0..64).collect::<Vec<u32>>(), 8, |i| {
            if i == 50 {
                panic!("item 50");
            }
            i
        });
    }
}
