//! The decode pool: a few OS threads behind a bounded queue, so decoding never runs on the
//! async runtime's workers and never delays ingest. When the queue is full a job is refused
//! at once (the caller skips its tick and counts it) instead of waiting.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of decode threads.
#[derive(Debug, Clone)]
pub struct DecodePool {
    sender: SyncSender<Job>,
}

impl DecodePool {
    /// Starts `threads` threads with room for `queue` waiting jobs.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (sender, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver: Arc<Mutex<Receiver<Job>>> = receiver.clone();
            std::thread::Builder::new()
                .name(format!("decode-{index}"))
                .spawn(move || loop {
                    let job = receiver
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    // No job: the pool is gone.
                    let Ok(job) = job else { return };
                    // A panicking job (a bug) must not take the thread with it.
                    if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a decode job panicked; the pool goes on");
                    }
                })?;
        }
        Ok(DecodePool { sender })
    }

    /// Queues `work`; `None` when the queue is full (the caller skips this tick).
    pub fn try_run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<oneshot::Receiver<T>> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        match self.sender.try_send(job) {
            Ok(()) => Some(result),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_off_the_runtime_and_refuses_when_full() {
        let pool = DecodePool::new(1, 1).unwrap();
        let runtime_thread = std::thread::current().id();
        let on = pool.try_run(move || std::thread::current().id()).unwrap();
        assert_ne!(on.await.unwrap(), runtime_thread);
        // Block the only thread, fill the queue: the next job is refused at once.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let blocker = pool
            .try_run(move || {
                let _ = started.send(());
                gate.recv().is_ok()
            })
            .unwrap();
        running.recv().unwrap();
        let queued = pool.try_run(|| 1).expect("one job fits in the queue");
        assert!(pool.try_run(|| 2).is_none(), "a full queue refuses");
        release.send(()).unwrap();
        assert!(blocker.await.unwrap());
        assert_eq!(queued.await.unwrap(), 1);
        // A panicking job does not kill the thread.
        let _ = pool.try_run(|| panic!("boom")).unwrap().await;
        assert_eq!(pool.try_run(|| 3).unwrap().await.unwrap(), 3);
    }
}
