//! The cross-reactor inbox: a FIFO of envelopes per reactor, woken by `mio::Waker`.
//!
//! Senders batch a turn's envelopes per destination and append them with one lock and at
//! most one wake; the owner swaps the whole queue out once per turn. One FIFO per owner is
//! what orders a close before anything another client sends after seeing it.

use crate::apps::AppMsg;
use crate::frame::Frame;
use crate::http::Request;
use crate::router::ConnId;
use mio::Waker;
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Mutex;

/// A socket moving to the reactor that owns its key, with its parsed request.
#[derive(Debug)]
pub struct Handoff {
    pub sock: mio::net::TcpStream,
    pub service: usize,
    pub req: Request,
    /// The address counted against the per-IP cap, if one is on.
    pub ip_counted: Option<IpAddr>,
    pub kind: HandoffKind,
}

#[derive(Debug)]
pub enum HandoffKind {
    /// Upgrade it there.
    Upgrade {
        ws_key: String,
        headers: Vec<(String, String)>,
        max_message: Option<usize>,
        /// Bytes read after the request head (the client's first frames).
        leftover: Vec<u8>,
    },
    /// Give the request to the app there, which reads its body (so the app hears of a
    /// body before it is read: `Event::HttpReading`).
    Http {
        /// Bytes read after the request head.
        leftover: Vec<u8>,
        max_body: Option<usize>,
    },
}

#[derive(Debug)]
pub enum Envelope {
    Frame(ConnId, Frame),
    Close(ConnId, Option<(u16, Cow<'static, str>)>),
    App(AppMsg),
    Handoff(Box<Handoff>),
    Respond(ConnId, crate::http::Response),
    Shutdown,
}

pub struct Inbox {
    queue: Mutex<Vec<Envelope>>,
    waker: Waker,
}

impl Inbox {
    pub fn new(waker: Waker) -> Inbox {
        Inbox {
            queue: Mutex::new(Vec::new()),
            waker,
        }
    }

    /// Appends `batch` (leaving it empty, capacity kept) and wakes the owner if it may be
    /// asleep. A non-empty queue means a wake is already pending.
    pub fn push_all(&self, batch: &mut Vec<Envelope>) {
        if batch.is_empty() {
            return;
        }
        let was_empty = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            let was_empty = q.is_empty();
            q.append(batch);
            was_empty
        };
        if was_empty {
            // A failed wake means the owner's poll is gone: it has exited.
            let _ = self.waker.wake();
        }
    }

    /// Wakes the owner without a message.
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }

    pub fn push(&self, e: Envelope) {
        self.push_all(&mut vec![e]);
    }

    /// Swaps the queued envelopes into `out` (which must be empty).
    pub fn drain_into(&self, out: &mut Vec<Envelope>) {
        debug_assert!(out.is_empty());
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *q, out);
    }
}
