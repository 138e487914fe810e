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
/// it saves). A panic in `f` is resumed on the calling thread, as it would be without threads.
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
    let per_thread = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut rest = items.into_iter();
    loop {
        let chunk: Vec<T> = rest.by_ref().take(per_thread).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let f = &f;
    std::thread::scope(|s| {
        // The calling thread takes the first chunk itself.
        let mut chunks = chunks.into_iter();
        let first = chunks.next().unwrap_or_default();
        let handles: Vec<_> = chunks
            .map(|chunk| s.spawn(move || chunk.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = first.into_iter().map(f).collect();
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
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
        let on_main = map_in_order((0..64).collect(), 8, |_| {
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
