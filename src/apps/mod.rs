//! Apps are pure state machines: `handle(event, now, &mut Outbox)`.
//!
//! An app never sees a socket, mio, a thread or the clock. The reactor turns socket
//! activity into [`Event`]s and carries out the [`Effect`]s the app leaves in its
//! [`Outbox`], in order. Every reactor runs its own instance of each app; instances talk
//! through [`Effect::Post`], which the reactor delivers to the named reactor's inbox.

pub mod bench;
pub mod echo;
pub mod harness;
pub mod pair;
pub mod pester;
pub mod rooms;
pub mod session;
pub mod signal;

use crate::frame::Frame;
use crate::http::{Request, Response};
use crate::router::ConnId;
use std::borrow::Cow;

/// Wall-clock milliseconds since the Unix epoch, never going backwards within a process.
pub type Millis = u64;

/// Something that happened to an app.
#[derive(Debug)]
pub enum Event<'a, M> {
    /// A WebSocket upgrade completed; `req` is the request head that asked for it.
    Opened { conn: ConnId, req: &'a Request },
    /// A request the app asked for with [`Route::Http`] whose body is still arriving,
    /// before it is read: the app may answer it now with [`Effect::Respond`] (refusing
    /// one that overlaps another; the connection then closes after the answer, its body
    /// unread), or wait for [`Event::Http`] with the body. Either way it is answered once,
    /// or the app gets `Closed { conn }` when the client leaves or the core answers it (a
    /// body that never finishes: `408`). Requests whose body came with the head go
    /// straight to [`Event::Http`].
    HttpReading { conn: ConnId, req: &'a Request },
    /// A plain HTTP request the app asked for with [`Route::Http`], with its body. The app
    /// answers with [`Effect::Respond`], now or later (long-polling holds it). If the
    /// client goes away first, the app gets `Closed { conn }` for it.
    Http {
        conn: ConnId,
        req: &'a Request,
        body: &'a [u8],
    },
    /// A complete text message (valid UTF-8, within the app's size limit).
    Text { conn: ConnId, text: &'a str },
    /// A complete binary message.
    Binary { conn: ConnId, data: &'a [u8] },
    /// The connection is gone: its close was read, its TCP died, a limit or the app closed
    /// it. Delivered exactly once per opened connection; frames sent to it are dropped.
    Closed { conn: ConnId },
    /// A message posted by this app's instance on another reactor (or this one).
    Remote(M),
    /// The periodic tick (about once a second).
    Tick,
    /// The end of a reactor turn, after every input of the turn (closes included) was
    /// handled and before anything is flushed: the place to coalesce per-turn output.
    TurnEnd,
    /// The server is draining: no re-queueing, no new work.
    Shutdown,
}

/// What an app asks the reactor to do.
#[derive(Debug, PartialEq)]
pub enum Effect<M> {
    /// Queue `frame` for `conn` (on any reactor).
    Send(ConnId, Frame),
    /// Queue `frame` for every connection in `recipients[start..end]` of the same outbox
    /// (on any reactor): one effect per fan-out rather than one per member (see
    /// [`Outbox::fan_out`]).
    FanOut {
        frame: Frame,
        start: usize,
        end: usize,
    },
    /// Close `conn` with a code and reason (`None`: a Close frame without a status code).
    Close(ConnId, Option<(u16, Cow<'static, str>)>),
    /// Queue `frame` for `conn` (on this reactor) as its "latest" frame: if the previous
    /// latest frame is still queued and not yet started, it is replaced (session snapshots:
    /// a slow reader gets the newest state, not every state).
    SendLatest(ConnId, Frame),
    /// Pipe two connections of this reactor: from now on every data frame from one is
    /// relayed to the other unchanged (opcode and payload) by the reactor, with no app
    /// event; reading pauses on a side while its partner's queue is over the high-water
    /// mark. The app still gets Closed for each side (and decides whether to close the
    /// other).
    Pipe(ConnId, ConnId),
    /// Answer the HTTP request of `conn` (from [`Event::Http`] or [`Event::HttpReading`]).
    /// The connection then closes, or stays open for the client's next request (HTTP/1.1
    /// keep-alive, when the whole request was read and the client did not ask to close).
    Respond(ConnId, Response),
    /// Deliver `M` to this app's instance on reactor `usize`.
    Post(usize, M),
}

/// The effects of one event, in order. Reused across events, so it allocates only while
/// it grows.
#[derive(Debug)]
pub struct Outbox<M> {
    pub effects: Vec<Effect<M>>,
    /// The members of every [`Effect::FanOut`] in `effects`, back to back.
    pub recipients: Vec<ConnId>,
}

impl<M> Default for Outbox<M> {
    fn default() -> Self {
        Outbox {
            effects: Vec::new(),
            recipients: Vec::new(),
        }
    }
}

impl<M> Outbox<M> {
    pub fn send(&mut self, to: ConnId, frame: Frame) {
        self.effects.push(Effect::Send(to, frame));
    }

    /// Queues one `frame` for each of `to`, in order: the same as a [`Outbox::send`] per
    /// member, for the price of one effect (the hot path of room fan-out).
    pub fn fan_out(&mut self, frame: Frame, to: impl IntoIterator<Item = ConnId>) {
        self.fan_out_with(frame, |recipients| recipients.extend(to));
    }

    /// [`Outbox::fan_out`] to the connections `fill` pushes, for state that hands its
    /// members to a callback rather than as an iterator.
    pub fn fan_out_with(&mut self, frame: Frame, fill: impl FnOnce(&mut Vec<ConnId>)) {
        let start = self.recipients.len();
        fill(&mut self.recipients);
        let end = self.recipients.len();
        if end > start {
            self.effects.push(Effect::FanOut { frame, start, end });
        }
    }

    pub fn close(&mut self, conn: ConnId, code: u16, reason: impl Into<Cow<'static, str>>) {
        self.effects
            .push(Effect::Close(conn, Some((code, reason.into()))));
    }

    pub fn send_latest(&mut self, to: ConnId, frame: Frame) {
        self.effects.push(Effect::SendLatest(to, frame));
    }

    pub fn pipe(&mut self, a: ConnId, b: ConnId) {
        self.effects.push(Effect::Pipe(a, b));
    }

    pub fn respond(&mut self, conn: ConnId, response: Response) {
        self.effects.push(Effect::Respond(conn, response));
    }

    pub fn post(&mut self, reactor: usize, msg: M) {
        self.effects.push(Effect::Post(reactor, msg));
    }
}

/// How the core should answer a request head that reached an app's port.
#[derive(Debug)]
pub enum Route {
    /// Upgrade. `owner` is the key whose owner reactor should hold the connection (`None`:
    /// stay on the accepting reactor); `headers` go into the 101 answer;
    /// `max_message_bytes` overrides the app's limit for this endpoint.
    Upgrade {
        owner: Option<Vec<u8>>,
        headers: Vec<(String, String)>,
        max_message_bytes: Option<usize>,
    },
    /// Answer with this response (and keep the connection for another request when the
    /// client allows it and sent no body, as for [`Effect::Respond`]).
    Respond(Response),
    /// Hand the request (head and body) to the app instance on the owner reactor of
    /// `owner` (`None`: this reactor) as [`Event::Http`]; the app answers it.
    /// `max_body: None` caps the body at the app's `max_message_bytes` and the core
    /// answers a longer one `413`; `Some(n)` caps it at `n` and a longer body is not read:
    /// the app gets the request with an empty body and `req.body_too_large` set, and
    /// answers it itself (pester closes the polling session too).
    Http {
        owner: Option<Vec<u8>>,
        max_body: Option<usize>,
    },
}

/// The interface every app implements.
pub trait App {
    /// What instances of this app on different reactors say to each other.
    type Msg: Send + std::fmt::Debug + 'static;

    /// Handles one event at `now`, leaving effects in `out`.
    fn handle(&mut self, event: Event<'_, Self::Msg>, now: Millis, out: &mut Outbox<Self::Msg>);

    /// The last word on an upgrade, on the reactor that will hold `conn`, just before the
    /// `101` (and the Opened event that follows it at once): refuse with a plain answer,
    /// or add headers to the `101`. For answers that need the owner's state (a per-room
    /// cap, a user id chosen by the key's owner). Default: accept as routed.
    fn accept(
        &mut self,
        _conn: ConnId,
        _req: &Request,
        _now: Millis,
        _headers: &mut Vec<(String, String)>,
    ) -> Result<(), Response> {
        Ok(())
    }
}

/// Messages between reactors, one variant per app.
#[derive(Debug)]
pub enum AppMsg {
    Pair(pair::PairMsg),
    Signal(signal::SignalMsg),
    Session(session::SessionMsg),
    Rooms(rooms::RoomsMsg),
    Pester(pester::PesterMsg),
    Bench(bench::Never),
    Echo(echo::Never),
}

/// The answer of `app` to a request head before the upgrade.
pub fn route(
    app: crate::config::AppKind,
    req: &Request,
    websocket: bool,
    config: &crate::config::Config,
) -> Route {
    use crate::config::AppKind;
    match app {
        AppKind::Pair => pair::route(req, websocket),
        AppKind::Pester => pester::route(req, websocket, config),
        AppKind::Rooms => rooms::route(req, websocket, &config.rooms_opts),
        AppKind::Signal => signal::route(req, websocket, config),
        AppKind::Session => session::route(
            req,
            websocket,
            &config.session_settings,
            session::unix_now(),
        ),
        AppKind::Bench => bench::route(req, websocket),
        AppKind::Echo => echo::route(req, websocket),
    }
}
