//! pair: the 1:1 pairing relay (VyomaChat), as `shared/protocols/pair.md` specifies.
//!
//! Inputs: Opened, Text, Binary, Closed, Shutdown, and [`PairMsg`] from other reactors.
//! Effects: the three fixed strings, relayed text frames, and posts. No deadlines.
//!
//! The lobby (the FIFO queue of waiting clients and the table of pairs) is one key with one
//! owner reactor, [`Pair::lobby`]. Connections stay on the reactor that accepted them;
//! every reactor keeps a cache from its own connections to their partners, which the lobby
//! owner updates through posts, so a relayed message costs one array index and one send.
//! Posts to one reactor arrive in order, so a partner update, the frames around it and a
//! later leave are never reordered.

use super::{App, Event, Millis, Outbox, Route};
use crate::frame::{self, Frame};
use crate::http::{Request, Response, Status};
use crate::router::{ConnId, ConnTable, owner_of};
use std::collections::VecDeque;

pub const WAITING: &str = "⌛ Waiting for another entrepreneur...";
pub const CONNECTED: &str = "🎯 Connected with an entrepreneur!";
pub const PARTNER_GONE: &str = "⚠️ Partner disconnected.";

/// The key of the lobby; its owner reactor holds the queue.
pub const LOBBY_KEY: &[u8] = b"pair:lobby";

/// Posts between pair instances.
#[derive(Debug, PartialEq)]
pub enum PairMsg {
    /// To the lobby owner: a connection arrived.
    Arrive(ConnId),
    /// To the lobby owner: a connection left.
    Leave(ConnId),
    /// To a connection's reactor: its partner is now this (or nobody).
    Partner(ConnId, Option<ConnId>),
}

/// The answer before the upgrade: any path upgrades; plain HTTP gets 426.
pub fn route(_req: &Request, websocket: bool) -> Route {
    if websocket {
        Route::Upgrade {
            owner: None,
            headers: Vec::new(),
            max_message_bytes: None,
        }
    } else {
        Route::Respond(Response::text(Status::UPGRADE_REQUIRED, "Upgrade Required"))
    }
}

pub struct Pair {
    me: usize,
    lobby: usize,
    draining: bool,
    /// This reactor's connections and their partners.
    partner: ConnTable<Option<ConnId>>,
    /// Lobby state, used on the owner reactor only.
    waiting: VecDeque<ConnId>,
    /// Each paired connection's partner, one table per reactor (20 bytes a connection,
    /// where a `HashMap` took about 41 at its load factor).
    pairs: Vec<ConnTable<ConnId>>,
    waiting_frame: Frame,
    connected_frame: Frame,
    gone_frame: Frame,
}

impl Pair {
    /// The instance on reactor `me` of `reactors`.
    pub fn new(me: usize, reactors: usize) -> Pair {
        Pair {
            me,
            lobby: owner_of(LOBBY_KEY, reactors),
            draining: false,
            partner: ConnTable::new(),
            waiting: VecDeque::new(),
            pairs: Vec::new(),
            waiting_frame: frame::text(WAITING),
            connected_frame: frame::text(CONNECTED),
            gone_frame: frame::text(PARTNER_GONE),
        }
    }

    /// The reactor that owns the lobby.
    pub fn lobby(&self) -> usize {
        self.lobby
    }

    fn tell_lobby(&mut self, msg: PairMsg, out: &mut Outbox<PairMsg>) {
        if self.me == self.lobby {
            self.lobby_handle(msg, out);
        } else {
            out.post(self.lobby, msg);
        }
    }

    fn set_partner(&mut self, conn: ConnId, partner: Option<ConnId>, out: &mut Outbox<PairMsg>) {
        if usize::from(conn.reactor) == self.me {
            if let Some(p) = self.partner.get_mut(conn) {
                *p = partner;
            }
        } else {
            out.post(conn.reactor.into(), PairMsg::Partner(conn, partner));
        }
    }

    /// Lobby owner: arrivals, leaves.
    fn lobby_handle(&mut self, msg: PairMsg, out: &mut Outbox<PairMsg>) {
        match msg {
            PairMsg::Arrive(conn) => self.arrive(conn, out),
            PairMsg::Leave(conn) => self.leave(conn, out),
            PairMsg::Partner(..) => {
                debug_assert!(false, "partner updates go to a connection's reactor");
            }
        }
    }

    fn arrive(&mut self, conn: ConnId, out: &mut Outbox<PairMsg>) {
        if self.draining {
            return;
        }
        match self.waiting.pop_front() {
            Some(head) => {
                self.pair_insert(conn, head);
                self.pair_insert(head, conn);
                self.set_partner(conn, Some(head), out);
                self.set_partner(head, Some(conn), out);
                // The arrival hears first (faithful order).
                out.send(conn, self.connected_frame.clone());
                out.send(head, self.connected_frame.clone());
            }
            None => {
                self.waiting.push_back(conn);
                out.send(conn, self.waiting_frame.clone());
            }
        }
    }

    fn leave(&mut self, conn: ConnId, out: &mut Outbox<PairMsg>) {
        if let Some(pos) = self.waiting.iter().position(|&c| c == conn) {
            self.waiting.remove(pos);
            return;
        }
        let Some(partner) = self.pair_remove(conn) else {
            return;
        };
        self.pair_remove(partner);
        self.set_partner(partner, None, out);
        if !self.draining {
            out.send(partner, self.gone_frame.clone());
            self.arrive(partner, out);
        }
    }

    fn pair_insert(&mut self, conn: ConnId, partner: ConnId) {
        let r = usize::from(conn.reactor);
        if r >= self.pairs.len() {
            self.pairs.resize_with(r + 1, ConnTable::new);
        }
        self.pairs[r].insert(conn, partner);
    }

    fn pair_remove(&mut self, conn: ConnId) -> Option<ConnId> {
        self.pairs.get_mut(usize::from(conn.reactor))?.remove(conn)
    }

    fn relay(&self, from: ConnId, frame: impl FnOnce() -> Frame, out: &mut Outbox<PairMsg>) {
        if let Some(&Some(to)) = self.partner.get(from) {
            out.send(to, frame());
        }
    }
}

impl App for Pair {
    type Msg = PairMsg;

    fn handle(&mut self, event: Event<'_, PairMsg>, _now: Millis, out: &mut Outbox<PairMsg>) {
        match event {
            Event::Opened { conn, .. } => {
                self.partner.insert(conn, None);
                self.tell_lobby(PairMsg::Arrive(conn), out);
            }
            Event::Text { conn, text } => self.relay(conn, || frame::transient_text(text), out),
            Event::Binary { conn, data } => self.relay(
                conn,
                || frame::transient_text(&String::from_utf8_lossy(data)),
                out,
            ),
            Event::Closed { conn } => {
                if self.partner.remove(conn).is_some() {
                    self.tell_lobby(PairMsg::Leave(conn), out);
                }
            }
            Event::Remote(PairMsg::Partner(conn, partner)) => {
                if let Some(p) = self.partner.get_mut(conn) {
                    *p = partner;
                }
            }
            Event::Remote(msg) => self.lobby_handle(msg, out),
            Event::Tick | Event::TurnEnd | Event::Http { .. } | Event::HttpReading { .. } => {}
            Event::Shutdown => self.draining = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::harness::{Harness, conn};

    fn h() -> Harness<Pair> {
        Harness::new(Pair::new(0, 1))
    }

    #[test]
    fn par_01_first_client_waits_with_exact_bytes() {
        let mut h = h();
        let c1 = conn(1);
        h.open(c1, "/").expect_texts(&[(c1, WAITING)]);
        assert_eq!(
            &frame::text(WAITING)[2..5],
            &[0xe2, 0x8c, 0x9b],
            "U+231B without U+FE0F"
        );
        assert_eq!(
            &frame::text(PARTNER_GONE)[2..8],
            &[0xe2, 0x9a, 0xa0, 0xef, 0xb8, 0x8f]
        );
        assert_eq!(&frame::text(CONNECTED)[2..6], &[0xf0, 0x9f, 0x8e, 0xaf]);
    }

    #[test]
    fn par_02_message_while_waiting_is_dropped() {
        let mut h = h();
        let (c1, c2) = (conn(1), conn(2));
        h.open(c1, "/").expect_texts(&[(c1, WAITING)]);
        h.text(c1, "talking to nobody").expect_nothing();
        h.open(c2, "/")
            .expect_texts(&[(c2, CONNECTED), (c1, CONNECTED)]);
        h.expect_nothing();
    }

    #[test]
    fn par_03_to_06_pairing_order_and_relay() {
        let mut h = h();
        let (c1, c2) = (conn(1), conn(2));
        h.open(c1, "/");
        h.clear();
        h.open(c2, "/whatever?x=1")
            .expect_texts(&[(c2, CONNECTED), (c1, CONNECTED)]);
        h.text(c1, "Hello from client!")
            .expect_texts(&[(c2, "Hello from client!")]);
        h.text(c2, "hi").expect_texts(&[(c1, "hi")]);
        h.binary(c2, &[0x68, 0x69, 0xff])
            .expect_frames(&[(c1, vec![0x81, 5, 0x68, 0x69, 0xef, 0xbf, 0xbd])]);
        h.text(c1, "").expect_frames(&[(c2, vec![0x81, 0])]);
    }

    #[test]
    fn par_07_newcomers_pair_with_each_other() {
        let mut h = h();
        let c: Vec<_> = (1..=4).map(conn).collect();
        h.open(c[0], "/");
        h.open(c[1], "/");
        h.clear();
        h.open(c[2], "/").expect_texts(&[(c[2], WAITING)]);
        h.open(c[3], "/")
            .expect_texts(&[(c[3], CONNECTED), (c[2], CONNECTED)]);
        h.text(c[3], "x").expect_texts(&[(c[2], "x")]);
    }

    #[test]
    fn par_08_orphan_waits_then_pairs_with_newcomer() {
        let mut h = h();
        let (c1, c2, c5) = (conn(1), conn(2), conn(5));
        h.open(c1, "/");
        h.open(c2, "/");
        h.clear();
        h.close(c1)
            .expect_texts(&[(c2, PARTNER_GONE), (c2, WAITING)]);
        h.open(c5, "/")
            .expect_texts(&[(c5, CONNECTED), (c2, CONNECTED)]);
        h.text(c2, "a").expect_texts(&[(c5, "a")]);
        h.text(c5, "b").expect_texts(&[(c2, "b")]);
    }

    #[test]
    fn par_09_orphan_pairs_at_once_with_waiting_client() {
        let mut h = h();
        let (c1, c2, c6) = (conn(1), conn(2), conn(6));
        h.open(c1, "/");
        h.open(c2, "/");
        h.open(c6, "/");
        h.clear();
        h.close(c1)
            .expect_texts(&[(c2, PARTNER_GONE), (c2, CONNECTED), (c6, CONNECTED)]);
        h.text(c6, "z").expect_texts(&[(c2, "z")]);
    }

    #[test]
    fn par_10_waiting_client_leaves_silently() {
        let mut h = h();
        let (c1, c2) = (conn(1), conn(2));
        h.open(c1, "/");
        h.clear();
        h.close(c1).expect_nothing();
        h.open(c2, "/").expect_texts(&[(c2, WAITING)]);
    }

    #[test]
    fn par_11_send_to_closed_partner_is_dropped() {
        let mut h = h();
        let (c1, c2) = (conn(1), conn(2));
        h.open(c1, "/");
        h.open(c2, "/");
        h.clear();
        h.close(c1)
            .expect_texts(&[(c2, PARTNER_GONE), (c2, WAITING)]);
        h.text(c2, "anyone?").expect_nothing();
    }

    #[test]
    fn par_12_both_partners_close_in_one_turn() {
        let mut h = h();
        let (c1, c2, c3) = (conn(1), conn(2), conn(3));
        h.open(c1, "/");
        h.open(c2, "/");
        h.clear();
        h.close_together(&[c1, c2]).expect_nothing();
        // Nobody is left in the queue: the next arrival waits.
        h.open(c3, "/").expect_texts(&[(c3, WAITING)]);
    }

    #[test]
    fn shutdown_requeues_nobody() {
        let mut h = h();
        let (c1, c2) = (conn(1), conn(2));
        h.open(c1, "/");
        h.open(c2, "/");
        h.clear();
        h.event(Event::Shutdown).expect_nothing();
        h.close(c1).expect_nothing();
    }

    /// Two instances, as on two reactors: posts carry arrivals, partners and leaves.
    #[test]
    fn pairs_across_reactors_relay_through_posts() {
        let reactors = 2;
        let lobby = owner_of(LOBBY_KEY, reactors);
        let other = 1 - lobby;
        let mut apps: Vec<Harness<Pair>> = (0..reactors)
            .map(|r| Harness::new(Pair::new(r, reactors)))
            .collect();
        let a = ConnId::new(other as u16, 1, 1);
        let b = ConnId::new(lobby as u16, 1, 1);
        let posts = apps[other].open(a, "/").take_posts();
        assert_eq!(posts, vec![(lobby, PairMsg::Arrive(a))]);
        for (_, m) in posts {
            apps[lobby].event(Event::Remote(m));
        }
        apps[lobby].expect_texts(&[(a, WAITING)]);
        apps[lobby].open(b, "/");
        let posts = apps[lobby].take_posts();
        assert_eq!(posts, vec![(other, PairMsg::Partner(a, Some(b)))]);
        apps[lobby].expect_texts(&[(b, CONNECTED), (a, CONNECTED)]);
        for (_, m) in posts {
            apps[other].event(Event::Remote(m)).expect_nothing();
        }
        apps[other].text(a, "to b").expect_texts(&[(b, "to b")]);
        apps[lobby].text(b, "to a").expect_texts(&[(a, "to a")]);
        // b leaves: a is told through the lobby and waits again.
        apps[lobby].close(b);
        let posts = apps[lobby].take_posts();
        assert_eq!(posts, vec![(other, PairMsg::Partner(a, None))]);
        apps[lobby].expect_texts(&[(a, PARTNER_GONE), (a, WAITING)]);
        for (_, m) in posts {
            apps[other].event(Event::Remote(m));
        }
        apps[other].text(a, "dropped").expect_nothing();
    }

    #[test]
    fn route_answers_plain_http_with_426() {
        match route(&Request::default(), false) {
            Route::Respond(r) => {
                assert_eq!(r.status.0, 426);
                assert_eq!(r.body, b"Upgrade Required");
                assert_eq!(r.content_type, "text/plain");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            route(&Request::default(), true),
            Route::Upgrade { owner: None, .. }
        ));
    }
}
