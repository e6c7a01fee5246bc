//! Runs a connection's reader and writer in one task, each polled only when something
//! it waits on woke it.
//!
//! `tokio::join!` polls both halves on every wakeup of the task: each batch of queued
//! frames also polled the reader (its socket, the stream's lock, its cancellation check,
//! a mutex), and each client frame polled the writer's timers, token and queue. Here
//! each half gets a waker of its own that marks it woken before waking the task, and a
//! poll of the task polls only the marked halves. The cost: two small allocations per
//! connection (the halves' wakers).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::future::{MaybeDone, maybe_done};
use futures_util::task::AtomicWaker;

/// One half's waker: marks the half, then wakes the task.
struct Half {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Half {
    /// Starts marked, so the first poll polls the half.
    fn new() -> Arc<Self> {
        Arc::new(Self {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        })
    }
}

impl Wake for Half {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

pin_project_lite::pin_project! {
    /// Both halves' outputs once both finished; see the module docs.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Join<A: Future, B: Future> {
        #[pin]
        a: MaybeDone<A>,
        #[pin]
        b: MaybeDone<B>,
        a_half: Arc<Half>,
        b_half: Arc<Half>,
    }
}

/// Runs `a` and `b` to completion in the calling task, each polled only when woken.
pub(crate) fn join<A: Future, B: Future>(a: A, b: B) -> Join<A, B> {
    Join {
        a: maybe_done(a),
        b: maybe_done(b),
        a_half: Half::new(),
        b_half: Half::new(),
    }
}

impl<A: Future, B: Future> Future for Join<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let a_done = poll_half(this.a.as_mut(), this.a_half, cx);
        let b_done = poll_half(this.b.as_mut(), this.b_half, cx);
        if !(a_done && b_done) {
            return Poll::Pending;
        }
        match (this.a.take_output(), this.b.take_output()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            // Both are done and their outputs are taken only here, once.
            _ => Poll::Pending,
        }
    }
}

/// Polls `future` if its half was woken; whether it is done.
fn poll_half<F: Future>(
    future: Pin<&mut MaybeDone<F>>,
    half: &Arc<Half>,
    cx: &Context<'_>,
) -> bool {
    if !matches!(*future, MaybeDone::Future(_)) {
        return true;
    }
    // Registered before the mark is cleared: a wake after the swap finds this task.
    half.task.register(cx.waker());
    if !half.woken.swap(false, Ordering::AcqRel) {
        return false;
    }
    let waker = Waker::from(Arc::clone(half));
    future.poll(&mut Context::from_waker(&waker)).is_ready()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn each_half_runs_to_the_end_when_woken() {
        let (a_go, mut a_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (b_go, mut b_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let joined = tokio::spawn(async move {
            join(
                async move {
                    a_rx.recv().await;
                    1
                },
                async move {
                    b_rx.recv().await;
                    b_rx.recv().await;
                    2
                },
            )
            .await
        });
        for go in [&b_go, &a_go, &b_go] {
            tokio::task::yield_now().await;
            go.send(()).expect("half waiting");
        }
        let outputs = tokio::time::timeout(Duration::from_secs(10), joined)
            .await
            .expect("both halves finished")
            .expect("task");
        assert_eq!(outputs, (1, 2));
    }

    #[tokio::test]
    async fn a_half_is_not_polled_for_the_others_wakeups() {
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = {
            let polls = polls.clone();
            std::future::poll_fn(move |_| {
                polls.fetch_add(1, Ordering::Relaxed);
                Poll::<()>::Pending
            })
        };
        let busy = async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(50), join(counted, busy)).await;
        assert_eq!(polls.load(Ordering::Relaxed), 1);
    }
}
