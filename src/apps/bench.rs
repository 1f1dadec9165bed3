//! bench: the comparison peers' generic room protocol (`shared/peers/README.md`), so the
//! load generator measures switchboard and the peers like for like.
//!
//! `ws://host:PORT/?room=R` (room `default` when absent); every text or binary message a
//! client sends goes to every other member of R, unchanged. A room's connections all live
//! on its owner reactor (hand-off at upgrade), so fan-out never crosses reactors: one
//! table lookup finds the room, the frame is encoded once, and each member costs one
//! queued reference.

use super::{App, Event, Millis, Outbox, Route};
use crate::frame;
use crate::http::{Request, Response, Status};
use crate::router::{ConnId, ConnTable};
use slab::Slab;
use std::collections::HashMap;

/// Bench instances never post to each other.
#[derive(Debug, PartialEq)]
pub enum Never {}

pub fn route(req: &Request, websocket: bool) -> Route {
    if !websocket {
        return Route::Respond(Response::text(Status::UPGRADE_REQUIRED, "Upgrade Required"));
    }
    let room = req.query_param("room").unwrap_or_else(|| "default".into());
    Route::Upgrade {
        owner: Some(room.into_bytes()),
        headers: Vec::new(),
        max_message_bytes: None,
    }
}

#[derive(Default)]
pub struct Bench {
    rooms: Slab<Vec<ConnId>>,
    by_name: HashMap<String, usize>,
    /// Each connection's room and its index in the member list (`u32`s: 16 bytes a slot
    /// instead of 32, paid by every connection).
    member: ConnTable<(u32, u32)>,
}

impl Bench {
    fn publish(&self, from: ConnId, frame: frame::Frame, out: &mut Outbox<Never>) {
        let Some(&(room, _)) = self.member.get(from) else {
            return;
        };
        let members = self.rooms[room as usize].iter().copied();
        out.fan_out(frame, members.filter(|&to| to != from));
    }
}

impl App for Bench {
    type Msg = Never;

    fn handle(&mut self, event: Event<'_, Never>, _now: Millis, out: &mut Outbox<Never>) {
        match event {
            Event::Opened { conn, req } => {
                let name = req.query_param("room").unwrap_or_else(|| "default".into());
                let room = match self.by_name.get(&name) {
                    Some(&r) => r,
                    None => {
                        let r = self.rooms.insert(Vec::new());
                        self.by_name.insert(name, r);
                        r
                    }
                };
                let members = &mut self.rooms[room];
                self.member
                    .insert(conn, (room as u32, members.len() as u32));
                members.push(conn);
            }
            Event::Text { conn, text } => self.publish(conn, frame::transient_text(text), out),
            Event::Binary { conn, data } => {
                self.publish(conn, frame::transient(frame::OP_BINARY, data), out)
            }
            Event::Closed { conn } => {
                let Some((room, index)) = self.member.remove(conn) else {
                    return;
                };
                let (room, index) = (room as usize, index as usize);
                let members = &mut self.rooms[room];
                members.swap_remove(index);
                if let Some(&moved) = members.get(index)
                    && let Some(m) = self.member.get_mut(moved)
                {
                    m.1 = index as u32;
                }
                if members.is_empty() {
                    self.rooms.remove(room);
                    self.by_name.retain(|_, r| *r != room);
                }
            }
            Event::Remote(never) => match never {},
            Event::Http { .. }
            | Event::HttpReading { .. }
            | Event::Tick
            | Event::TurnEnd
            | Event::Shutdown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::harness::{Harness, conn};

    #[test]
    fn messages_reach_every_other_member_of_the_room_only() {
        let mut h = Harness::new(Bench::default());
        let (a, b, c, d) = (conn(1), conn(2), conn(3), conn(4));
        h.open(a, "/?room=r1");
        h.open(b, "/?room=r1");
        h.open(c, "/?room=r1");
        h.open(d, "/");
        h.text(a, "hi").expect_texts(&[(b, "hi"), (c, "hi")]);
        h.binary(d, &[1, 2]).expect_nothing();
        h.close(b);
        h.text(c, "x").expect_texts(&[(a, "x")]);
        h.close(a);
        h.close(c);
        // The emptied room is gone; newcomers start it again.
        let (e, f) = (conn(5), conn(6));
        h.open(e, "/?room=r1");
        h.open(f, "/?room=r1");
        h.binary(f, &[7]).expect_frames(&[(e, vec![0x82, 1, 7])]);
    }
}
