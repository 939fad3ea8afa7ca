//! The decode pool: a few OS threads behind a bounded queue, so decoding never runs on the
//! async runtime's workers and never delays ingest. When the queue is full a job is refused
//! at once (the caller skips its tick and counts it) instead of waiting.
//!
//! Waiting jobs run earliest deadline first (a job's deadline is its stream's next tick: a
//! job not done by then costs that tick). When many streams' jobs arrive together — the first
//! pictures of streams started together — a first-come order would let a job with plenty of
//! time run before one whose next tick is near, and that one would miss its tick although all
//! of them could have kept theirs; earliest-deadline-first keeps every deadline whenever any
//! order can.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;
use tokio::time::Instant;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of decode threads.
#[derive(Debug, Clone)]
pub struct DecodePool {
    handle: Arc<Handle>,
}

/// Closes the queue when the last `DecodePool` clone goes, so the threads end.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: BinaryHeap<Waiting>,
    /// Orders jobs with the same deadline first come, first served.
    arrivals: u64,
    closed: bool,
}

struct Waiting {
    deadline: Instant,
    arrival: u64,
    job: Job,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting")
            .field("deadline", &self.deadline)
            .field("arrival", &self.arrival)
            .finish_non_exhaustive()
    }
}

impl Waiting {
    fn key(&self) -> (Instant, u64) {
        (self.deadline, self.arrival)
    }
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    /// Reversed: the max-heap pops the earliest deadline.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job, waiting for one; `None` once the pool is closed.
    fn next(&self) -> Option<Job> {
        let mut queue = self.lock();
        loop {
            if let Some(waiting) = queue.waiting.pop() {
                return Some(waiting.job);
            }
            if queue.closed {
                return None;
            }
            queue = self
                .ready
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

impl DecodePool {
    /// Starts `threads` threads with room for `queue` waiting jobs.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            ready: Condvar::new(),
            capacity: queue,
        });
        for index in 0..threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("decode-{index}"))
                .spawn(move || {
                    while let Some(job) = shared.next() {
                        // A panicking job (a bug) must not take the thread with it.
                        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                            tracing::error!("a decode job panicked; the pool goes on");
                        }
                    }
                })?;
        }
        Ok(DecodePool {
            handle: Arc::new(Handle { shared }),
        })
    }

    /// Queues `work`, to run before the jobs with later deadlines; `None` when the queue is
    /// full (the caller skips this tick).
    pub fn try_run<T: Send + 'static>(
        &self,
        deadline: Instant,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<oneshot::Receiver<T>> {
        let shared = &self.handle.shared;
        let mut queue = shared.lock();
        if queue.waiting.len() >= shared.capacity {
            return None;
        }
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        queue.arrivals += 1;
        let arrival = queue.arrivals;
        queue.waiting.push(Waiting {
            deadline,
            arrival,
            job,
        });
        drop(queue);
        shared.ready.notify_one();
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Occupies the pool's only thread until the returned sender is used.
    fn block(pool: &DecodePool) -> (std::sync::mpsc::Sender<()>, oneshot::Receiver<bool>) {
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let blocker = pool
            .try_run(Instant::now(), move || {
                let _ = started.send(());
                gate.recv().is_ok()
            })
            .unwrap();
        running.recv().unwrap();
        (release, blocker)
    }

    #[tokio::test]
    async fn runs_jobs_off_the_runtime_and_refuses_when_full() {
        let pool = DecodePool::new(1, 1).unwrap();
        let runtime_thread = std::thread::current().id();
        let on = pool
            .try_run(Instant::now(), move || std::thread::current().id())
            .unwrap();
        assert_ne!(on.await.unwrap(), runtime_thread);
        // Block the only thread, fill the queue: the next job is refused at once.
        let (release, blocker) = block(&pool);
        let queued = pool
            .try_run(Instant::now(), || 1)
            .expect("one job fits in the queue");
        assert!(
            pool.try_run(Instant::now(), || 2).is_none(),
            "a full queue refuses"
        );
        release.send(()).unwrap();
        assert!(blocker.await.unwrap());
        assert_eq!(queued.await.unwrap(), 1);
        // A panicking job does not kill the thread.
        let _ = pool
            .try_run(Instant::now(), || panic!("boom"))
            .unwrap()
            .await;
        assert_eq!(
            pool.try_run(Instant::now(), || 3).unwrap().await.unwrap(),
            3
        );
    }

    #[tokio::test]
    async fn waiting_jobs_run_earliest_deadline_first() {
        let pool = DecodePool::new(1, 10).unwrap();
        let (release, blocker) = block(&pool);
        let order = Arc::new(Mutex::new(Vec::new()));
        let now = Instant::now();
        let mut done = Vec::new();
        for (name, seconds) in [("late", 9), ("soon", 1), ("middle", 5), ("soon too", 1)] {
            let order = order.clone();
            let deadline = now + Duration::from_secs(seconds);
            done.push(
                pool.try_run(deadline, move || order.lock().unwrap().push(name))
                    .unwrap(),
            );
        }
        release.send(()).unwrap();
        blocker.await.unwrap();
        for job in done {
            job.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["soon", "soon too", "middle", "late"]
        );
    }

    #[test]
    fn threads_end_with_the_last_handle() {
        let pool = DecodePool::new(2, 4).unwrap();
        let shared = Arc::downgrade(&pool.handle.shared);
        let clone = pool.clone();
        drop(pool);
        assert!(!clone.handle.shared.lock().closed);
        drop(clone);
        // The threads drop their references as they return.
        for _ in 0..200 {
            if shared.strong_count() == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("decode threads still running after the pool was dropped");
    }
}
