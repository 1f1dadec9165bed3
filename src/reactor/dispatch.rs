//! Calling the apps and carrying out their effects.

use super::Reactor;
use super::inbox::Envelope;
use crate::apps::pair::Pair;
use crate::apps::pester::Pester;
use crate::apps::{App, AppMsg, Effect, Event, Outbox};
use crate::config::{AppKind, Config};
use crate::http::Request;
use crate::router::ConnId;

/// This reactor's instance of every enabled app, with a reusable outbox each.
pub struct AppSet {
    pair: Option<(Pair, Outbox<<Pair as App>::Msg>)>,
    pester: Option<(Pester, Outbox<<Pester as App>::Msg>)>,
}

impl AppSet {
    pub fn new(me: usize, reactors: usize, config: &Config) -> AppSet {
        AppSet {
            pair: config
                .pair
                .enabled
                .then(|| (Pair::new(me, reactors), Outbox::default())),
            pester: config.pester.enabled.then(|| {
                let seed = [random_u64(), random_u64()];
                let app = Pester::new(me, reactors, &config.pester_opts, seed);
                (app, Outbox::default())
            }),
        }
    }
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
            for effect in effects.drain(..) {
                $self.apply(effect, $wrap);
            }
            if let Some((_, out)) = $self.apps.$field.as_mut() {
                out.effects = effects;
            }
        }
    }};
}

impl Reactor {
    pub(super) fn dispatch(&mut self, app: AppKind, event: CoreEvent<'_>) {
        match app {
            AppKind::Pair => run_app!(self, pair, AppMsg::Pair, event.into_event()),
            AppKind::Pester => run_app!(self, pester, AppMsg::Pester, event.into_event()),
            AppKind::Session | AppKind::Rooms | AppKind::Signal => {}
        }
    }

    pub(super) fn dispatch_remote(&mut self, msg: AppMsg) {
        match msg {
            AppMsg::Pair(m) => run_app!(self, pair, AppMsg::Pair, Event::Remote(m)),
            AppMsg::Pester(m) => run_app!(self, pester, AppMsg::Pester, Event::Remote(m)),
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

    fn apply<M>(&mut self, effect: Effect<M>, wrap: fn(M) -> AppMsg) {
        match effect {
            Effect::Send(to, frame) => self.send(to, frame),
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
