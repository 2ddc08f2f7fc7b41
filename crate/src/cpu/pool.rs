//! Where the CPU kernels' parallel work runs: the seam between the backend and threads.
//!
//! A forward step is a few hundred parallel regions (a decode step of the test model: ~210
//! matmuls of 50 to 500 µs of work each, plus attention), so starting threads per region is far
//! too slow. Natively a persistent pool runs them: its workers spin briefly between regions, so
//! the next one starts within a microsecond, and sleep when work stops coming.
//!
//! In the browser the same pool runs on Web Workers that share the wasm memory, in a build with
//! wasm atomics (a cross-origin isolated page; see pkg-scripts/build-npm.sh). There `std` cannot
//! start threads, so the page starts the workers and each lends its thread to the pool through
//! [`lend_thread`]. Without atomics the work runs on the calling thread ([`SingleThread`]).

/// Runs the tasks of one parallel region.
pub trait Workers: Send {
    /// Threads that run tasks, the caller's included.
    fn threads(&self) -> usize;
    /// Calls `task(i)` once for every `i` in `0..n`, spread over the threads in any order, and
    /// returns when all have returned. A task that panics makes `for_each` panic.
    fn for_each(&self, n: usize, task: &(dyn Fn(usize) + Sync));
}

/// A slice that the tasks of one region write in disjoint parts (output rows, attention heads).
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(*mut f32);

// SAFETY: tasks write disjoint parts of the slice, which outlives the region.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    pub(crate) fn new(out: &mut [f32]) -> Self {
        Self(out.as_mut_ptr())
    }

    /// # Safety
    /// `at` is within the slice this was made from, and no other task touches it.
    #[inline(always)]
    pub(crate) unsafe fn write(self, at: usize, v: f32) {
        unsafe { *self.0.add(at) = v };
    }

    /// # Safety
    /// As `write`, for `len` elements from `at`.
    #[inline(always)]
    pub(crate) unsafe fn slice<'a>(self, at: usize, len: usize) -> &'a mut [f32] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(at), len) }
    }
}

/// Every task on the calling thread.
pub struct SingleThread;

impl Workers for SingleThread {
    fn threads(&self) -> usize {
        1
    }

    fn for_each(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..n).for_each(task);
    }
}

#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
pub use threaded::ThreadPool;
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub use threaded::{lend_thread, thread_failed};

#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
mod threaded {
    use std::any::Any;
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    // std's clock does not exist on wasm32-unknown-unknown; web_time is std's natively.
    use web_time::Instant;

    use super::Workers;

    /// How long an idle worker spins for the next region before it sleeps: longer than the gaps
    /// between regions inside a forward step, shorter than a pause for input.
    const SPIN: Duration = Duration::from_micros(500);

    /// One region: the task and the counters its threads claim and complete indices with.
    struct Job {
        /// Valid until `done` reaches `n`: `for_each` does not return before.
        task: *const (dyn Fn(usize) + Sync),
        n: usize,
        next: AtomicUsize,
        done: AtomicUsize,
        panic: Mutex<Option<Box<dyn Any + Send>>>,
    }

    // SAFETY: `task` is Sync and is only called while `for_each`'s borrow of it is alive.
    unsafe impl Send for Job {}
    unsafe impl Sync for Job {}

    impl Job {
        /// Claims and runs indices until none are left.
        fn work(&self) {
            loop {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                if i >= self.n {
                    return;
                }
                // SAFETY: index i < n is not done, so `for_each` is still waiting.
                let task = unsafe { &*self.task };
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| task(i))) {
                    self.panic.lock().unwrap().get_or_insert(p);
                }
                self.done.fetch_add(1, Ordering::Release);
            }
        }
    }

    struct Shared {
        /// Bumped (under `job`'s lock) for every region and for shutdown.
        epoch: AtomicU64,
        job: Mutex<Option<Arc<Job>>>,
        wake: Condvar,
        sleepers: AtomicUsize,
        stop: AtomicBool,
        /// A thread died inside a task (wasm traps instead of unwinding), so that task will
        /// never be done: the caller fails rather than wait for it.
        #[cfg(target_arch = "wasm32")]
        failed: AtomicBool,
    }

    /// A fixed set of threads that, with the caller, run each region's tasks.
    pub struct ThreadPool {
        shared: Arc<Shared>,
        /// Threads besides the caller.
        helpers: usize,
        #[cfg(not(target_arch = "wasm32"))]
        handles: Vec<std::thread::JoinHandle<()>>,
        /// This pool's key in `web::POOLS`, which the page's workers lend their threads through.
        #[cfg(target_arch = "wasm32")]
        id: u32,
    }

    impl ThreadPool {
        fn shared() -> Arc<Shared> {
            Arc::new(Shared {
                epoch: AtomicU64::new(0),
                job: Mutex::new(None),
                wake: Condvar::new(),
                sleepers: AtomicUsize::new(0),
                stop: AtomicBool::new(false),
                #[cfg(target_arch = "wasm32")]
                failed: AtomicBool::new(false),
            })
        }

        /// `threads` threads in all: the caller and `threads - 1` workers.
        #[cfg(not(target_arch = "wasm32"))]
        pub fn new(threads: usize) -> Self {
            let shared = Self::shared();
            let handles: Vec<_> = (1..threads.max(1))
                .map(|i| {
                    let shared = shared.clone();
                    std::thread::Builder::new()
                        .name(format!("torchlight-cpu-{i}"))
                        .spawn(move || worker(&shared))
                        .expect("spawning a CPU worker thread")
                })
                .collect();
            Self { shared, helpers: handles.len(), handles }
        }
    }

    fn worker(shared: &Shared) {
        let mut seen = 0;
        loop {
            let start = Instant::now();
            let mut spins = 0u32;
            loop {
                let epoch = shared.epoch.load(Ordering::Acquire);
                if epoch != seen {
                    seen = epoch;
                    break;
                }
                spins = spins.wrapping_add(1);
                if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
                    std::hint::spin_loop();
                    continue;
                }
                let mut job = shared.job.lock().unwrap();
                shared.sleepers.fetch_add(1, Ordering::SeqCst);
                while shared.epoch.load(Ordering::Acquire) == seen {
                    job = shared.wake.wait(job).unwrap();
                }
                shared.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            let job = shared.job.lock().unwrap().clone();
            if let Some(job) = job {
                job.work();
            }
        }
    }

    impl Workers for ThreadPool {
        fn threads(&self) -> usize {
            self.helpers + 1
        }

        fn for_each(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
            if n <= 1 || self.helpers == 0 {
                (0..n).for_each(task);
                return;
            }
            // SAFETY: only the lifetime is erased; this function waits below until every index
            // is done, and no thread calls `task` for an index it has not claimed.
            let task: *const (dyn Fn(usize) + Sync + '_) = task;
            let task: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(task) };
            let job = Arc::new(Job {
                task,
                n,
                next: AtomicUsize::new(0),
                done: AtomicUsize::new(0),
                panic: Mutex::new(None),
            });
            {
                let mut slot = self.shared.job.lock().unwrap();
                *slot = Some(job.clone());
                self.shared.epoch.fetch_add(1, Ordering::Release);
                if self.shared.sleepers.load(Ordering::SeqCst) > 0 {
                    self.shared.wake.notify_all();
                }
            }
            job.work();
            let mut spins = 0u32;
            while job.done.load(Ordering::Acquire) < n {
                spins = spins.wrapping_add(1);
                // A worker holding the last task may have lost its core: let it have ours.
                if spins.is_multiple_of(1024) {
                    #[cfg(target_arch = "wasm32")]
                    assert!(!self.shared.failed.load(Ordering::Acquire), "a CPU worker thread died in a task");
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
            let panic = job.panic.lock().unwrap().take();
            if let Some(p) = panic {
                resume_unwind(p);
            }
        }
    }

    impl Drop for ThreadPool {
        fn drop(&mut self) {
            {
                let _slot = self.shared.job.lock().unwrap();
                self.shared.stop.store(true, Ordering::Release);
                self.shared.epoch.fetch_add(1, Ordering::Release);
                self.shared.wake.notify_all();
            }
            #[cfg(not(target_arch = "wasm32"))]
            for h in self.handles.drain(..) {
                let _ = h.join();
            }
            #[cfg(target_arch = "wasm32")]
            web::POOLS.lock().unwrap().retain(|(id, _)| *id != self.id);
        }
    }

    #[cfg(target_arch = "wasm32")]
    pub use web::{lend_thread, thread_failed};

    #[cfg(target_arch = "wasm32")]
    mod web {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::{Arc, Mutex};

        use super::{worker, Shared, ThreadPool};

        /// The live pools, by id: what a page's worker may lend its thread to. Ids, not
        /// pointers, cross to JS, so a stale or wrong one finds nothing instead of freed memory.
        pub(super) static POOLS: Mutex<Vec<(u32, Arc<Shared>)>> = Mutex::new(Vec::new());
        static NEXT_ID: AtomicU32 = AtomicU32::new(1);

        impl ThreadPool {
            /// A pool of `threads` threads: the caller, and `threads - 1` that the page starts
            /// as Web Workers, each calling [`lend_thread`] with [`ThreadPool::id`]. Until they
            /// have, the caller runs every task itself.
            pub fn new(threads: usize) -> Self {
                let shared = Self::shared();
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                POOLS.lock().unwrap().push((id, shared.clone()));
                Self { shared, helpers: threads.max(1) - 1, id }
            }

            pub fn id(&self) -> u32 {
                self.id
            }
        }

        fn find(id: u32) -> Option<Arc<Shared>> {
            POOLS.lock().unwrap().iter().find(|(i, _)| *i == id).map(|(_, s)| s.clone())
        }

        /// Runs the tasks of pool `id` on the calling thread (a Web Worker's) until the pool is
        /// dropped; returns at once if there is no such pool.
        pub fn lend_thread(id: u32) {
            if let Some(shared) = find(id) {
                worker(&shared);
            }
        }

        /// Says that a thread lent to pool `id` trapped: a task it had claimed will never end,
        /// so the pool's caller panics instead of waiting for ever.
        pub fn thread_failed(id: u32) {
            if let Some(shared) = find(id) {
                shared.failed.store(true, Ordering::Release);
            }
        }
    }
}
