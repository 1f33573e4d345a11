//! What unfinished requests may hold: request body bytes per connection and in all the
//! server, and the time a request has to arrive.
//!
//! Every request body is wrapped in a [`GuardedBody`] by the listener. What it will hold is
//! counted against its connection's [`Budget`] and the server's until the body is dropped
//! (for a gRPC call: when its message is decoded; for REST: when the gateway has read it).
//! A REST body counts the bytes it delivers. A gRPC body counts each message's declared
//! length as soon as its 5-byte prefix arrives, because tonic reserves a buffer of that
//! size right then: a client that sends only prefixes declaring 4 MiB would otherwise make
//! the server allocate 4 MiB per stream for free. A body that would overrun either budget
//! fails with
//! RESOURCE_EXHAUSTED, and one that has not ended `receive_timeout` after its request
//! began fails with DEADLINE_EXCEEDED, so a client that sends most of many large messages
//! and never finishes them holds a bounded amount of memory for a bounded time, while
//! other clients' calls go on.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// Bytes held, with a limit.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    /// What the limit is, for messages: "this connection's" or "the server's".
    whose: &'static str,
}

impl Budget {
    pub fn new(limit: usize, whose: &'static str) -> Budget {
        Budget {
            limit,
            used: AtomicUsize::new(0),
            whose,
        }
    }

    /// Takes `bytes` if they fit under the limit.
    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// How a body's bytes are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accounting {
    /// Every byte as it arrives (REST).
    Bytes,
    /// gRPC length-prefixed messages: each message's prefix and declared length, when the
    /// prefix has arrived.
    GrpcMessages,
}

/// Where a gRPC body is in its framing.
#[derive(Debug, Clone, Copy)]
struct Framing {
    prefix: [u8; 5],
    prefix_filled: usize,
    /// Bytes of the current message still to come.
    message_left: usize,
}

impl Framing {
    /// Walks `data`; returns the bytes to count (prefix and declared length of every
    /// message whose prefix completes in it).
    fn charge(&mut self, mut data: &[u8]) -> usize {
        let mut charge = 0;
        while !data.is_empty() {
            if self.message_left > 0 {
                let skipped = self.message_left.min(data.len());
                self.message_left -= skipped;
                data = &data[skipped..];
                continue;
            }
            let taken = (5 - self.prefix_filled).min(data.len());
            self.prefix[self.prefix_filled..self.prefix_filled + taken]
                .copy_from_slice(&data[..taken]);
            self.prefix_filled += taken;
            data = &data[taken..];
            if self.prefix_filled == 5 {
                let declared = u32::from_be_bytes(self.prefix[1..5].try_into().expect("4 bytes"));
                charge += 5 + declared as usize;
                self.message_left = declared as usize;
                self.prefix_filled = 0;
            }
        }
        charge
    }
}

/// A request body that counts what it will hold against two budgets and must end in time.
pub struct GuardedBody<B> {
    inner: B,
    budgets: [Arc<Budget>; 2],
    held: usize,
    framing: Option<Framing>,
    deadline: Pin<Box<Sleep>>,
    receive_timeout: Duration,
    ended: bool,
}

impl<B> GuardedBody<B> {
    /// Guards `inner` with the connection's budget, the server's, and the time to receive it.
    pub fn new(
        inner: B,
        accounting: Accounting,
        connection: Arc<Budget>,
        server: Arc<Budget>,
        receive_timeout: Duration,
    ) -> GuardedBody<B> {
        GuardedBody {
            inner,
            budgets: [connection, server],
            held: 0,
            framing: (accounting == Accounting::GrpcMessages).then_some(Framing {
                prefix: [0; 5],
                prefix_filled: 0,
                message_left: 0,
            }),
            deadline: Box::pin(tokio::time::sleep(receive_timeout)),
            receive_timeout,
            ended: false,
        }
    }

    /// Counts `bytes` against both budgets, or says which one they overrun.
    fn take(&mut self, bytes: usize) -> Result<(), tonic::Status> {
        let [connection, server] = &self.budgets;
        for (index, budget) in [connection, server].into_iter().enumerate() {
            if !budget.try_take(bytes) {
                if index == 1 {
                    connection.give_back(bytes);
                }
                return Err(tonic::Status::resource_exhausted(format!(
                    "{} unfinished requests already hold {} bytes, the limit is {}: \
                     finish or cancel them, or send smaller messages",
                    budget.whose,
                    budget.used(),
                    budget.limit
                )));
            }
        }
        self.held += bytes;
        Ok(())
    }
}

impl<B> Drop for GuardedBody<B> {
    fn drop(&mut self) {
        for budget in &self.budgets {
            budget.give_back(self.held);
        }
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if !self.ended && self.deadline.as_mut().poll(context).is_ready() {
            self.ended = true;
            return Poll::Ready(Some(Err(tonic::Status::deadline_exceeded(format!(
                "the request did not arrive within {} (--request-receive-timeout)",
                humantime::format_duration(self.receive_timeout)
            )))));
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(context) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                self.ended = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(error))) => {
                self.ended = true;
                return Poll::Ready(Some(Err(unreadable(error.into()))));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            let charge = match &mut self.framing {
                Some(framing) => framing.charge(data),
                None => data.len(),
            };
            if let Err(status) = self.take(charge) {
                self.ended = true;
                return Poll::Ready(Some(Err(status)));
            }
        } else {
            // Trailers end the body.
            self.ended = true;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The status of a body the connection could not deliver: CANCELLED and the like where
/// the error carries them (an HTTP/2 stream the client reset), else INVALID_ARGUMENT saying
/// why, with the causes that say it: an HTTP/1.1 chunk that is malformed, a body cut
/// short, an HTTP/2 body longer or shorter than its content-length (which h2 answers with
/// a reset; the access log then says 400, not 500).
fn unreadable(error: Box<dyn std::error::Error + Send + Sync>) -> tonic::Status {
    let mut why = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        why.push_str(": ");
        why.push_str(&inner.to_string());
        cause = inner.source();
    }
    let status = tonic::Status::from_error(error);
    match status.code() {
        tonic::Code::Unknown | tonic::Code::Internal => {
            tonic::Status::invalid_argument(format!("the request body could not be read: {why}"))
        }
        _ => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn chunks(sizes: &[usize]) -> impl Body<Data = Bytes, Error = std::io::Error> + Unpin {
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = sizes
            .iter()
            .map(|size| Ok(Frame::data(Bytes::from(vec![0u8; *size]))))
            .collect();
        StreamBody::new(tokio_stream::iter(frames))
    }

    #[tokio::test]
    async fn bytes_count_against_both_budgets_until_the_body_is_dropped() {
        let connection = Arc::new(Budget::new(100, "this connection's"));
        let server = Arc::new(Budget::new(150, "the server's"));
        let long = Duration::from_secs(60);
        let first = GuardedBody::new(
            chunks(&[60, 30]),
            Accounting::Bytes,
            connection.clone(),
            server.clone(),
            long,
        );
        let first = first.collect().await.map(|_| ());
        assert!(first.is_ok());
        // Collecting consumed (and dropped) the body: everything was given back.
        assert_eq!((connection.used(), server.used()), (0, 0));

        let mut held = GuardedBody::new(
            chunks(&[90]),
            Accounting::Bytes,
            connection.clone(),
            server.clone(),
            long,
        );
        held.frame().await.unwrap().unwrap();
        assert_eq!((connection.used(), server.used()), (90, 90));
        let other = Arc::new(Budget::new(100, "another connection's"));
        let mut refused = GuardedBody::new(
            chunks(&[70]),
            Accounting::Bytes,
            other.clone(),
            server.clone(),
            long,
        );
        let status = refused.frame().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().starts_with("the server's"), "{status:?}");
        // The refused body's connection got its bytes back.
        assert_eq!(other.used(), 0);
        let mut over = GuardedBody::new(
            chunks(&[20]),
            Accounting::Bytes,
            connection.clone(),
            server.clone(),
            long,
        );
        let status = over.frame().await.unwrap().unwrap_err();
        assert!(
            status.message().starts_with("this connection's"),
            "{status:?}"
        );
        drop(held);
        assert_eq!((connection.used(), server.used()), (0, 0));
    }

    #[test]
    fn grpc_messages_count_their_declared_length_when_their_prefix_arrives() {
        let mut framing = Framing {
            prefix: [0; 5],
            prefix_filled: 0,
            message_left: 0,
        };
        // A prefix split over two chunks declaring 1000 bytes, then part of the message.
        assert_eq!(framing.charge(&[0, 0, 0]), 0);
        assert_eq!(framing.charge(&[3, 232, 1, 2, 3]), 1005);
        assert_eq!(framing.charge(&[7; 997]), 0);
        // A second message of 2 bytes whole in one chunk, and the prefix of a third.
        assert_eq!(framing.charge(&[0, 0, 0, 0, 2, 9, 9, 0, 0]), 7);
        assert_eq!((framing.message_left, framing.prefix_filled), (0, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_does_not_end_in_time_fails() {
        let budget = || Arc::new(Budget::new(1 << 20, "a"));
        let silent =
            StreamBody::new(tokio_stream::pending::<Result<Frame<Bytes>, std::io::Error>>());
        let mut guarded = GuardedBody::new(
            silent,
            Accounting::Bytes,
            budget(),
            budget(),
            Duration::from_secs(5),
        );
        let status = guarded.frame().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }
}
