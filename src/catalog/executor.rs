//! Where catalog work runs: lanes of OS threads, each thread owning one SQLite connection,
//! fed through a queue with a bounded number of places.
//!
//! A caller takes a place (waiting asynchronously when the lane is full — backpressure, never
//! an unbounded pile of blocking tasks), hands the job to the lane's threads and awaits its
//! answer. The place is given back when the job has run. A panicking job is answered as an
//! error; its thread and connection go on.

use super::CatalogError;
use rusqlite::Connection;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{oneshot, Semaphore};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The catalog's two lanes.
pub(super) struct Executor {
    /// One connection: SQLite has one writer at a time anyway, and queueing here keeps
    /// writers off its busy timeout.
    pub writer: Lane,
    /// Several read-only connections (WAL readers do not block the writer or each other).
    pub readers: Lane,
}

/// Threads sharing one job queue.
pub(super) struct Lane {
    jobs: mpsc::Sender<Job>,
    places: Arc<Semaphore>,
}

impl Lane {
    /// Starts one thread per connection; at most `places` jobs wait or run at once.
    pub fn start(name: &str, connections: Vec<Connection>, places: usize) -> std::io::Result<Lane> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for (index, mut conn) in connections.into_iter().enumerate() {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("catalog-{name}-{index}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job, so idle
                    // threads queue up on it and a job goes to exactly one of them.
                    let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match next {
                        Ok(job) => job(&mut conn),
                        Err(_) => return, // every `Lane` handle dropped
                    }
                })?;
        }
        Ok(Lane {
            jobs,
            places: Arc::new(Semaphore::new(places)),
        })
    }

    /// Runs `f` on one of the lane's connections and returns its answer.
    pub async fn run<R, F>(&self, f: F) -> Result<R, CatalogError>
    where
        F: FnOnce(&mut Connection) -> Result<R, CatalogError> + Send + 'static,
        R: Send + 'static,
    {
        let place = self
            .places
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CatalogError::Closed)?;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)));
            drop(place);
            let _ = answer.send(result.unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(CatalogError::Panicked(message))
            }));
        });
        self.jobs.send(job).map_err(|_| CatalogError::Closed)?;
        answered.await.map_err(|_| CatalogError::Closed)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lane(threads: usize, places: usize) -> Lane {
        let connections = (0..threads)
            .map(|_| Connection::open_in_memory().unwrap())
            .collect();
        Lane::start("test", connections, places).unwrap()
    }

    #[tokio::test]
    async fn answers_jobs_off_the_runtime_and_survives_a_panic() {
        let lane = lane(2, 4);
        let caller = std::thread::current().id();
        let on = lane
            .run(move |_| Ok(std::thread::current().id()))
            .await
            .unwrap();
        assert_ne!(on, caller);
        let answer: Result<(), _> = lane.run(|_| panic!("boom")).await;
        assert!(matches!(answer, Err(CatalogError::Panicked(m)) if m == "boom"));
        let sum: i64 = lane
            .run(|conn| Ok(conn.query_row("SELECT 1 + 1", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(sum, 2);
    }

    #[tokio::test]
    async fn a_full_lane_makes_callers_wait_instead_of_queueing_more() {
        let lane = Arc::new(lane(1, 2));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let mut held = Vec::new();
        for _ in 0..2 {
            let (lane, gate) = (lane.clone(), gate.clone());
            held.push(tokio::spawn(async move {
                lane.run(move |_| {
                    let _ = gate.lock().unwrap().recv();
                    Ok(())
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let third = lane.run(|_| Ok(3));
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut third)
                .await
                .is_err(),
            "a third job got a place while two were held"
        );
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert_eq!(third.await.unwrap(), 3);
        for job in held {
            job.await.unwrap().unwrap();
        }
    }
}
