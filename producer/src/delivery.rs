//! Delivery results: one [`Completion`] per batch, shared by the futures of its records.
//!
//! A record's [`DeliveryFuture`] holds the batch's completion and the record's index in it;
//! the sender settles a range of indices at once (a whole batch, or each half of a batch that
//! was split), and every future of the range resolves from that one outcome. This costs one
//! allocation per batch instead of a channel per record.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use kafkawire_client::{Error, Result};

use crate::RecordMetadata;

/// How one range of a batch's records ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// Written: the offset of the range's first record (-1 when unknown) and the broker's
    /// append time (-1 for CreateTime topics).
    Written {
        base_offset: i64,
        append_time: i64,
    },
    Failed(Error),
}

#[derive(Default)]
struct State {
    /// Settled ranges of record indices `[first, end)` with their outcome.
    settled: Vec<(u32, u32, Outcome)>,
    /// Tasks waiting on a record of the batch.
    wakers: Vec<Waker>,
}

/// The shared result of one batch's records.
#[derive(Default)]
pub(crate) struct Completion {
    state: Mutex<State>,
}

impl Completion {
    /// Settles records `first..end` (indices in the batch as it was opened).
    fn settle(&self, first: u32, end: u32, outcome: Outcome) {
        let wakers = {
            let Ok(mut s) = self.state.lock() else { return };
            if s.settled.iter().any(|(f, e, _)| *f < end && first < *e) {
                return; // settled already (each record settles once)
            }
            s.settled.push((first, end, outcome));
            std::mem::take(&mut s.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    pub(crate) fn succeed(&self, first: u32, end: u32, base_offset: i64, append_time: i64) {
        self.settle(
            first,
            end,
            Outcome::Written {
                base_offset,
                append_time,
            },
        );
    }

    pub(crate) fn fail(&self, first: u32, end: u32, err: &Error) {
        self.settle(first, end, Outcome::Failed(err.clone()));
    }
}

/// Resolves when the record is acknowledged (or fails). Dropping it does not cancel the send.
pub struct DeliveryFuture {
    pub(crate) completion: Arc<Completion>,
    pub(crate) index: u32,
    pub(crate) timestamp: i64,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Ok(mut s) = this.completion.state.lock() else {
            return Poll::Ready(Err(Error::ProducerClosed {
                reason: Some("internal state poisoned".into()),
            }));
        };
        let i = this.index;
        let found = s
            .settled
            .iter()
            .find(|(f, e, _)| (*f..*e).contains(&i))
            .map(|(f, _, o)| (*f, o.clone()));
        match found {
            Some((
                first,
                Outcome::Written {
                    base_offset,
                    append_time,
                },
            )) => Poll::Ready(Ok(RecordMetadata {
                topic: this.topic.clone(),
                partition: this.partition,
                offset: if base_offset < 0 {
                    -1
                } else {
                    base_offset + i64::from(i - first)
                },
                timestamp: if append_time >= 0 {
                    append_time
                } else {
                    this.timestamp
                },
            })),
            Some((_, Outcome::Failed(e))) => Poll::Ready(Err(e)),
            None => {
                if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    s.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}
