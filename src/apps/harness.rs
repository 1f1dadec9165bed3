//! A test harness for apps: feed events on a virtual clock, assert the exact effects, then
//! assert that nothing is left.
//!
//! It models the one reactor rule apps rely on: frames sent to a connection that has been
//! closed are dropped. Connections closed "together" are all marked closed before any of
//! their Closed events is handled, as the reactor does for closes seen in one loop turn.

use super::{App, Effect, Event, Millis, Outbox};
use crate::frame;
use crate::http::Request;
use crate::router::ConnId;
use std::collections::HashSet;
use std::fmt::Debug;

/// A connection on reactor 0 with slot `n`, generation 1.
pub fn conn(n: u32) -> ConnId {
    ConnId::new(0, n, 1)
}

/// A request head for `target` (path and query), for Opened events.
pub fn request(target: &str) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Request {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        minor_version: 1,
        ..Request::default()
    }
}

pub struct Harness<A: App> {
    pub app: A,
    pub now: Millis,
    out: Outbox<A::Msg>,
    /// Effects not yet asserted, in order.
    pending: Vec<Effect<A::Msg>>,
    closed: HashSet<ConnId>,
}

impl<A: App> Harness<A>
where
    A::Msg: PartialEq + Debug,
{
    pub fn new(app: A) -> Self {
        Harness {
            app,
            now: 1_700_000_000_000,
            out: Outbox::default(),
            pending: Vec::new(),
            closed: HashSet::new(),
        }
    }

    pub fn advance(&mut self, ms: Millis) -> &mut Self {
        self.now += ms;
        self
    }

    pub fn event(&mut self, event: Event<'_, A::Msg>) -> &mut Self {
        self.app.handle(event, self.now, &mut self.out);
        let closed = &self.closed;
        let recipients = std::mem::take(&mut self.out.recipients);
        // A fan-out is checked as the sends it stands for.
        let effects = self.out.effects.drain(..).flat_map(|e| match e {
            Effect::FanOut { frame, start, end } => recipients[start..end]
                .iter()
                .map(|&to| Effect::Send(to, frame.clone()))
                .collect(),
            other => vec![other],
        });
        self.pending.extend(effects.filter(|e| match e {
            Effect::Send(to, _)
            | Effect::SendLatest(to, _)
            | Effect::Close(to, _)
            | Effect::Respond(to, _) => !closed.contains(to),
            Effect::FanOut { .. } | Effect::Pipe(..) | Effect::Post(..) => true,
        }));
        self
    }

    pub fn open_req(&mut self, conn: ConnId, req: &Request) -> &mut Self {
        self.event(Event::Opened { conn, req })
    }

    pub fn open(&mut self, conn: ConnId, target: &str) -> &mut Self {
        let req = request(target);
        self.open_req(conn, &req)
    }

    pub fn text(&mut self, conn: ConnId, text: &str) -> &mut Self {
        self.event(Event::Text { conn, text })
    }

    pub fn binary(&mut self, conn: ConnId, data: &[u8]) -> &mut Self {
        self.event(Event::Binary { conn, data })
    }

    pub fn close(&mut self, conn: ConnId) -> &mut Self {
        self.close_together(&[conn])
    }

    /// Closes several connections in one turn.
    pub fn close_together(&mut self, conns: &[ConnId]) -> &mut Self {
        self.closed.extend(conns.iter().copied());
        for &conn in conns {
            self.event(Event::Closed { conn });
        }
        self
    }

    pub fn tick(&mut self) -> &mut Self {
        self.event(Event::Tick)
    }

    /// Ends the current reactor turn.
    pub fn turn_end(&mut self) -> &mut Self {
        self.event(Event::TurnEnd)
    }

    /// Removes and returns the posts made so far, leaving other effects.
    pub fn take_posts(&mut self) -> Vec<(usize, A::Msg)> {
        let mut posts = Vec::new();
        let mut rest = Vec::new();
        for e in self.pending.drain(..) {
            match e {
                Effect::Post(r, m) => posts.push((r, m)),
                other => rest.push(other),
            }
        }
        self.pending = rest;
        posts
    }

    /// Removes and returns every effect not yet asserted.
    pub fn take_effects(&mut self) -> Vec<Effect<A::Msg>> {
        std::mem::take(&mut self.pending)
    }

    /// Asserts that the effects so far are exactly these frames, and clears them.
    pub fn expect_frames(&mut self, expected: &[(ConnId, Vec<u8>)]) -> &mut Self {
        let got: Vec<(ConnId, Vec<u8>)> = self
            .pending
            .iter()
            .map(|e| match e {
                Effect::Send(to, f) | Effect::SendLatest(to, f) => (*to, f.to_vec()),
                other => panic!("expected only sends, got {other:?}"),
            })
            .collect();
        assert_eq!(got, expected, "frames");
        self.pending.clear();
        self
    }

    /// Asserts that the effects so far are exactly these text frames, and clears them.
    pub fn expect_texts(&mut self, expected: &[(ConnId, &str)]) -> &mut Self {
        let got: Vec<(ConnId, String)> = self
            .pending
            .iter()
            .map(|e| match e {
                Effect::Send(to, f) | Effect::SendLatest(to, f) => (*to, text_of(f)),
                other => panic!("expected only text sends, got {other:?}"),
            })
            .collect();
        let want: Vec<(ConnId, String)> =
            expected.iter().map(|(c, t)| (*c, t.to_string())).collect();
        assert_eq!(got, want, "text frames");
        self.pending.clear();
        self
    }

    /// Asserts the exact effects (sends, closes, posts), and clears them.
    pub fn expect(&mut self, expected: Vec<Effect<A::Msg>>) -> &mut Self {
        assert_eq!(self.pending, expected, "effects");
        self.pending.clear();
        self
    }

    /// Removes and returns every effect not yet asserted.
    pub fn take(&mut self) -> Vec<Effect<A::Msg>> {
        std::mem::take(&mut self.pending)
    }

    pub fn expect_nothing(&mut self) -> &mut Self {
        assert!(
            self.pending.is_empty(),
            "unexpected effects: {:?}",
            self.pending
        );
        self
    }

    pub fn clear(&mut self) -> &mut Self {
        self.pending.clear();
        self
    }
}

/// The text of an encoded server text frame (panics on anything else: a test bug).
pub fn text_of(f: &frame::Frame) -> String {
    assert_eq!(f[0], 0x80 | frame::OP_TEXT, "not a final text frame: {f:?}");
    let (start, len) = match f[1] {
        126 => (4, u16::from_be_bytes([f[2], f[3]]) as usize),
        127 => (
            10,
            u64::from_be_bytes(f[2..10].try_into().expect("8 bytes")) as usize,
        ),
        n => (2, n as usize),
    };
    assert_eq!(f.len(), start + len, "frame length");
    String::from_utf8(f[start..].to_vec()).expect("text frames hold UTF-8")
}
