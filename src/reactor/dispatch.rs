//! Calling the apps and carrying out their effects.

use super::Reactor;
use super::inbox::Envelope;
use crate::apps::bench::Bench;
use crate::apps::echo::Echo;
use crate::apps::pair::Pair;
use crate::apps::pester::Pester;
use crate::apps::rooms::{Rooms, store};
use crate::apps::session::Session;
use crate::apps::signal::Signal;
use crate::apps::{App, AppMsg, Effect, Event, Outbox};
use crate::config::{AppKind, Config};
use crate::http::{Request, Response};
use crate::router::ConnId;

/// This reactor's instance of every enabled app, with a reusable outbox each.
pub struct AppSet {
    pair: Option<(Pair, Outbox<<Pair as App>::Msg>)>,
    signal: Option<(Signal, Outbox<<Signal as App>::Msg>)>,
    session: Option<(Session, Outbox<<Session as App>::Msg>)>,
    bench: Option<(Bench, Outbox<<Bench as App>::Msg>)>,
    echo: Option<(Echo, Outbox<<Echo as App>::Msg>)>,
    rooms: Option<(Rooms, Outbox<<Rooms as App>::Msg>)>,
    pester: Option<(Pester, Outbox<<Pester as App>::Msg>)>,
}

/// What the rooms instance of one reactor starts from: the rooms it owns, as stored, and
/// the store's sink.
pub struct RoomsBoot {
    pub loaded: std::collections::HashMap<String, store::Loaded>,
    pub sink: store::ChannelSink,
}

impl AppSet {
    pub fn new(me: usize, reactors: usize, config: &Config, boot: Option<RoomsBoot>) -> AppSet {
        AppSet {
            pair: config
                .pair
                .enabled
                .then(|| (Pair::new(me, reactors), Outbox::default())),
            signal: config
                .signal
                .enabled
                .then(|| (Signal::new(config.signal_limits.clone()), Outbox::default())),
            session: config
                .session
                .enabled
                .then(|| (Session::new(&config.session_settings), Outbox::default())),
            bench: config
                .bench
                .enabled
                .then(|| (Bench::default(), Outbox::default())),
            echo: config.echo.enabled.then(|| (Echo, Outbox::default())),
            rooms: config.rooms.enabled.then(|| {
                let (loaded, sink): (_, Box<dyn store::Sink>) = match boot {
                    Some(b) => (b.loaded, Box::new(b.sink)),
                    None => {
                        tracing::error!("rooms runs without its store: nothing is persisted");
                        (Default::default(), Box::new(store::NullSink))
                    }
                };
                let rooms = Rooms::new(&config.rooms_opts, loaded, sink, random_seed());
                (rooms, Outbox::default())
            }),
            pester: config.pester.enabled.then(|| {
                let seed = [random_u64(), random_u64()];
                let app = Pester::new(me, reactors, &config.pester_opts, seed);
                (app, Outbox::default())
            }),
        }
    }
}

/// 32 bytes from the OS for the rooms app's user ids.
fn random_seed() -> [u8; 32] {
    use std::hash::{BuildHasher, Hasher};
    use std::io::Read;
    let mut seed = [0u8; 32];
    let os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed));
    if os.is_err() {
        // std seeds its hash keys from the OS too.
        for chunk in seed.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    seed
}

/// 64 bits from the OS-seeded keys of `std`'s `RandomState` (unpredictable app seeds).
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

/// The app-independent form of an [`Event`], converted for each app's message type.
pub enum CoreEvent<'a> {
    Opened {
        conn: ConnId,
        req: &'a Request,
    },
    HttpReading {
        conn: ConnId,
        req: &'a Request,
    },
    Http {
        conn: ConnId,
        req: &'a Request,
        body: &'a [u8],
    },
    Text {
        conn: ConnId,
        text: &'a str,
    },
    Binary {
        conn: ConnId,
        data: &'a [u8],
    },
    Closed {
        conn: ConnId,
    },
    Tick,
    TurnEnd,
    Shutdown,
}

impl<'a> CoreEvent<'a> {
    fn into_event<M>(self) -> Event<'a, M> {
        match self {
            CoreEvent::Opened { conn, req } => Event::Opened { conn, req },
            CoreEvent::HttpReading { conn, req } => Event::HttpReading { conn, req },
            CoreEvent::Http { conn, req, body } => Event::Http { conn, req, body },
            CoreEvent::Text { conn, text } => Event::Text { conn, text },
            CoreEvent::Binary { conn, data } => Event::Binary { conn, data },
            CoreEvent::Closed { conn } => Event::Closed { conn },
            CoreEvent::Tick => Event::Tick,
            CoreEvent::TurnEnd => Event::TurnEnd,
            CoreEvent::Shutdown => Event::Shutdown,
        }
    }
}

/// Runs one event through one app and applies its effects, reusing the outbox.
macro_rules! run_app {
    ($self:ident, $field:ident, $wrap:path, $event:expr) => {{
        if let Some((app, out)) = $self.apps.$field.as_mut() {
            app.handle($event, $self.now, out);
            let mut effects = std::mem::take(&mut out.effects);
            let mut recipients = std::mem::take(&mut out.recipients);
            for effect in effects.drain(..) {
                $self.apply(effect, &recipients, $wrap);
            }
            recipients.clear();
            if let Some((_, out)) = $self.apps.$field.as_mut() {
                out.effects = effects;
                out.recipients = recipients;
            }
        }
    }};
}

impl Reactor {
    pub(super) fn dispatch(&mut self, app: AppKind, event: CoreEvent<'_>) {
        match app {
            AppKind::Pair => run_app!(self, pair, AppMsg::Pair, event.into_event()),
            AppKind::Pester => run_app!(self, pester, AppMsg::Pester, event.into_event()),
            AppKind::Rooms => run_app!(self, rooms, AppMsg::Rooms, event.into_event()),
            AppKind::Signal => run_app!(self, signal, AppMsg::Signal, event.into_event()),
            AppKind::Session => run_app!(self, session, AppMsg::Session, event.into_event()),
            AppKind::Bench => run_app!(self, bench, AppMsg::Bench, event.into_event()),
            AppKind::Echo => run_app!(self, echo, AppMsg::Echo, event.into_event()),
        }
    }

    /// The app's last word before the `101` (see [`App::accept`]).
    pub(super) fn app_accept(
        &mut self,
        app: AppKind,
        conn: ConnId,
        req: &Request,
        headers: &mut Vec<(String, String)>,
    ) -> Result<(), Response> {
        let now = self.now;
        match app {
            AppKind::Pair => self
                .apps
                .pair
                .as_mut()
                .map(|(a, _)| a.accept(conn, req, now, headers)),
            AppKind::Rooms => self
                .apps
                .rooms
                .as_mut()
                .map(|(a, _)| a.accept(conn, req, now, headers)),
            AppKind::Pester => self
                .apps
                .pester
                .as_mut()
                .map(|(a, _)| a.accept(conn, req, now, headers)),
            AppKind::Session => self
                .apps
                .session
                .as_mut()
                .map(|(a, _)| a.accept(conn, req, now, headers)),
            AppKind::Signal | AppKind::Bench | AppKind::Echo => None,
        }
        .unwrap_or(Ok(()))
    }

    pub(super) fn dispatch_remote(&mut self, msg: AppMsg) {
        match msg {
            AppMsg::Pair(m) => run_app!(self, pair, AppMsg::Pair, Event::Remote(m)),
            AppMsg::Pester(m) => run_app!(self, pester, AppMsg::Pester, Event::Remote(m)),
            AppMsg::Rooms(m) => run_app!(self, rooms, AppMsg::Rooms, Event::Remote(m)),
            AppMsg::Signal(m) => match m {},
            AppMsg::Session(m) => match m {},
            AppMsg::Bench(never) => match never {},
            AppMsg::Echo(never) => match never {},
        }
    }

    pub(super) fn apps_tick(&mut self) {
        for app in AppKind::ALL {
            self.dispatch(app, CoreEvent::Tick);
        }
    }

    pub(super) fn apps_turn_end(&mut self) {
        for app in AppKind::ALL {
            self.dispatch(app, CoreEvent::TurnEnd);
        }
    }

    pub(super) fn apps_shutdown(&mut self) {
        for app in AppKind::ALL {
            self.dispatch(app, CoreEvent::Shutdown);
        }
    }

    fn apply<M>(&mut self, effect: Effect<M>, recipients: &[ConnId], wrap: fn(M) -> AppMsg) {
        match effect {
            Effect::Send(to, frame) => self.send(to, frame),
            Effect::FanOut { frame, start, end } => self.fan_out(frame, &recipients[start..end]),
            Effect::SendLatest(to, frame) => self.deliver_latest(to, frame),
            Effect::Pipe(a, b) => self.pipe(a, b),
            Effect::Respond(to, response) => self.app_respond(to, response),
            Effect::Close(to, close) => {
                if usize::from(to.reactor) == self.me {
                    self.app_close_local(to, close);
                } else {
                    self.outgoing[usize::from(to.reactor)].push(Envelope::Close(to, close));
                }
            }
            Effect::Post(reactor, msg) => {
                let envelope = Envelope::App(wrap(msg));
                if reactor == self.me {
                    self.local.push(envelope);
                } else if let Some(batch) = self.outgoing.get_mut(reactor) {
                    batch.push(envelope);
                } else {
                    debug_assert!(false, "post to reactor {reactor} that does not exist");
                }
            }
        }
    }
}
