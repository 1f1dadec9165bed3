//! One handler per client message type, then the relay copies.

use super::decimal::Decimal;
use super::state::{Conn, Counter, Poll, Room};
use super::wire::{self, Json};
use super::{Rooms, RoomsMsg, store};
use crate::apps::{Effect, Millis, Outbox};
use crate::frame::{self, Frame};
use crate::router::{ConnId, ConnTable};
use serde_json::value::RawValue;
use sha2::Digest;

/// Queues `f` for `to`, noting the time for `/users`.
fn deliver(
    conns: &mut ConnTable<Conn>,
    to: ConnId,
    f: Frame,
    now: Millis,
    out: &mut Outbox<RoomsMsg>,
) {
    if let Some(c) = conns.get_mut(to) {
        c.last_comm = now;
    }
    out.send(to, f);
}

/// [`deliver`] of one frame to every connection `each` yields, as one fan-out effect.
fn deliver_all(
    conns: &mut ConnTable<Conn>,
    f: Frame,
    now: Millis,
    out: &mut Outbox<RoomsMsg>,
    each: impl FnOnce(&mut dyn FnMut(ConnId)),
) {
    out.fan_out_with(f, |recipients| {
        each(&mut |to| {
            if let Some(c) = conns.get_mut(to) {
                c.last_comm = now;
            }
            recipients.push(to);
        })
    });
}

/// Splits `event[:id]`; no `:` or an empty id is `all`.
fn event_id(s: &str) -> (&str, &str) {
    match s.split_once(':') {
        Some((t, "")) => (t, "all"),
        Some((t, id)) => (t, id),
        None => (s, "all"),
    }
}

/// JavaScript's `String.prototype.trim` set of whitespace.
fn js_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

fn limit(key: &str) -> String {
    wire::error(&format!("Limit exceeded: {key}"))
}

fn data_is_null(data: Option<&RawValue>) -> bool {
    data.is_none_or(|d| wire::classify(d) == Json::Null)
}

impl Rooms {
    pub(super) fn text(
        &mut self,
        conn: ConnId,
        text: &str,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.last_comm = now;
        let Some(msg) = wire::parse_incoming(text) else {
            return;
        };
        let admin = c.admin;
        let data = msg.data;
        match msg.kind.as_str() {
            "login" => self.login(conn, data, now, out),
            "profile" => {
                let p = self.profile_frame(conn);
                self.send_text(conn, &p, now, out);
            }
            "subscribe" => self.subscribe(conn, data, now, out),
            "unsubscribe" => self.unsubscribe(conn, data, now, out),
            "chat" => self.chat(conn, data, now, out),
            "poll" => self.poll(conn, data, false, now, out),
            "ephemeralPoll" => self.poll(conn, data, true, now, out),
            "counter" => self.counter(conn, data, now, out),
            "authenticate" => self.authenticate(conn, data, now, out),
            "config" if admin => self.config(conn, data, now, out),
            "broadcast" if admin => self.broadcast(conn, data, now, out),
            "relay" if admin => self.relay(conn, data, now, out),
            "deleteRelay" if admin => self.delete_relay(conn, data),
            "close" => out.effects.push(Effect::Close(conn, None)),
            _ => {}
        }
        self.relay_copies(conn, &msg.kind, data, now, out);
    }

    fn error(&mut self, conn: ConnId, text: &str, now: Millis, out: &mut Outbox<RoomsMsg>) {
        self.send_text(conn, &wire::error(text), now, out);
    }

    fn limit(&mut self, conn: ConnId, key: &str, now: Millis, out: &mut Outbox<RoomsMsg>) {
        self.send_text(conn, &limit(key), now, out);
    }

    /// The connection's room and state.
    fn parts(&mut self, conn: ConnId) -> Option<(&mut Room, &mut ConnTable<Conn>)> {
        let c = self.conns.get(conn)?;
        let room = self.rooms.get_mut(&c.room)?;
        Some((room, &mut self.conns))
    }

    fn login(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let props: Vec<(String, String)> = if data_is_null(data) {
            Vec::new()
        } else {
            match data.and_then(wire::members) {
                Some(m) => {
                    m.0.into_iter()
                        .map(|(k, v)| (k, wire::minify(v.get())))
                        .collect()
                }
                None => return self.error(conn, "login data must be an object", now, out),
            }
        };
        let max = self.cfg.max_properties_bytes;
        let Some((room, conns)) = self.parts(conn) else {
            return;
        };
        let uid = conns.get(conn).map(|c| c.user.clone()).unwrap_or_default();
        let Some(user) = room.users.get_mut(&uid) else {
            return;
        };
        let old = std::mem::replace(&mut user.props, props);
        let json = user.props_json(false);
        if json.len() > max {
            user.props = old;
            return self.limit(conn, "max_properties_bytes", now, out);
        }
        let op = store::Op::User {
            room: room.name.clone(),
            id: uid,
            suffix: user.suffix,
            props: json,
            last_seen: now,
        };
        user.last_seen = now;
        self.push(op);
        let p = self.profile_frame(conn);
        self.send_text(conn, &p, now, out);
    }

    /// The `event[:id]` string of subscribe, unsubscribe and broadcast `to`.
    fn event_arg(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) -> Option<(String, String)> {
        let Json::Str(s) = wire::classify(data?) else {
            return None;
        };
        if s.len() > self.cfg.max_id_bytes {
            self.limit(conn, "max_id_bytes", now, out);
            return None;
        }
        let (t, id) = event_id(&s);
        (!t.is_empty()).then(|| (t.to_string(), id.to_string()))
    }

    fn subscribe(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let Some((kind, id)) = self.event_arg(conn, data, now, out) else {
            return;
        };
        let max = self.cfg.max_subscriptions_per_connection;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if !c.subs.iter().any(|(t, i)| *t == kind && *i == id) {
            if c.subs.len() >= max {
                return self.limit(conn, "max_subscriptions_per_connection", now, out);
            }
            c.subs.push((kind.clone(), id.clone()));
        }
        let Some((room, conns)) = self.parts(conn) else {
            return;
        };
        room.add_sub(conn, &kind, &id);
        let matches = |p: &str| id == "all" || p == id;
        match kind.as_str() {
            "poll" | "ephemeralPoll" => {
                let polls = if kind == "poll" {
                    &mut room.polls
                } else {
                    &mut room.ephemeral
                };
                let ids: Vec<String> = polls
                    .js_ids()
                    .into_iter()
                    .filter(|p| matches(p))
                    .map(String::from)
                    .collect();
                for pid in ids {
                    if let Some(p) = polls.map.get_mut(&pid) {
                        deliver(conns, conn, p.frame(&kind, &pid), now, out);
                    }
                }
            }
            "counter" => {
                for cid in room.counters.js_ids() {
                    if matches(cid) {
                        let f = counter_frame(cid, room.counters.map[cid].value);
                        deliver(conns, conn, f, now, out);
                    }
                }
            }
            _ => {}
        }
    }

    fn unsubscribe(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let Some((kind, id)) = self.event_arg(conn, data, now, out) else {
            return;
        };
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let mut gone = Vec::new();
        c.subs.retain(|(t, i)| {
            let drop = *t == kind && (id == "all" || *i == id);
            if drop {
                gone.push(i.clone());
            }
            !drop
        });
        let Some((room, _)) = self.parts(conn) else {
            return;
        };
        for i in gone {
            room.remove_sub(conn, &kind, &i);
        }
    }

    fn chat(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let Some((room, conns)) = self.parts(conn) else {
            return;
        };
        let Some(user) = conns.get(conn).and_then(|c| room.users.get(&c.user)) else {
            return;
        };
        let mut body = String::from("{");
        if let Some(d) = data {
            body.push_str("\"message\":");
            wire::minify_into(d.get(), &mut body);
            body.push(',');
        }
        body.push_str("\"user\":");
        body.push_str(&user.public_json());
        body.push('}');
        let f = frame::transient_text(&wire::typed("chat", &body));
        deliver_all(conns, f, now, out, |each| {
            room.subscribers("chat", "all", each)
        });
    }

    fn poll(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        ephemeral: bool,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let Some(m) = data.and_then(wire::members) else {
            return;
        };
        let (Some(id), Some(answer)) = (
            m.get("id").and_then(wire::id_text),
            m.get("answer").and_then(wire::id_text),
        ) else {
            return;
        };
        if id.len() > self.cfg.max_id_bytes || answer.len() > self.cfg.max_id_bytes {
            return self.limit(conn, "max_id_bytes", now, out);
        }
        let (max_polls, key) = if ephemeral {
            (self.cfg.max_ephemeral_polls, "max_ephemeral_polls")
        } else {
            (self.cfg.max_polls, "max_polls")
        };
        let max_answers = self.cfg.max_answers_per_poll;
        let Some((room, conns)) = self.parts(conn) else {
            return;
        };
        let uid = conns.get(conn).map(|c| c.user.clone()).unwrap_or_default();
        let polls = if ephemeral {
            &room.ephemeral
        } else {
            &room.polls
        };
        let fresh = !polls.map.contains_key(&id);
        if fresh && polls.len() >= max_polls {
            return self.limit(conn, key, now, out);
        }
        if let Some(p) = polls.map.get(&id)
            && !p.has_answer(&answer)
        {
            // The voter's old answer may vanish and make room.
            let vanishing = p
                .votes
                .get(&uid)
                .and_then(|old| p.answers.iter().find(|(a, _, _)| a == old))
                .is_some_and(|(_, n, _)| *n == 1);
            if p.answers.len() - usize::from(vanishing) >= max_answers {
                return self.limit(conn, "max_answers_per_poll", now, out);
            }
        } else if fresh && max_answers == 0 {
            return self.limit(conn, "max_answers_per_poll", now, out);
        }
        let name = room.name.clone();
        let mut ops = Vec::new();
        if fresh && !ephemeral {
            ops.push(store::Op::Poll {
                room: name.clone(),
                poll: id.clone(),
                seq: room.next_poll_seq,
            });
            room.next_poll_seq += 1;
        }
        let polls = if ephemeral {
            &mut room.ephemeral
        } else {
            &mut room.polls
        };
        if fresh {
            polls.insert(id.clone(), Poll::default());
        }
        let Some(p) = polls.map.get_mut(&id) else {
            return;
        };
        let change = p.vote(&uid, &answer);
        let kind = if ephemeral { "ephemeralPoll" } else { "poll" };
        let f = p.frame(kind, &id);
        if !ephemeral {
            if let Some(gone) = change.gone {
                ops.push(store::Op::Answer {
                    room: name.clone(),
                    poll: id.clone(),
                    answer: gone,
                    pos: None,
                });
            }
            if let Some((a, pos)) = change.created {
                ops.push(store::Op::Answer {
                    room: name.clone(),
                    poll: id.clone(),
                    answer: a,
                    pos: Some(pos),
                });
            }
            ops.push(store::Op::Vote {
                room: name,
                poll: id.clone(),
                user: uid,
                answer: Some(answer),
            });
        }
        deliver_all(conns, f, now, out, |each| room.subscribers(kind, &id, each));
        for op in ops {
            self.push(op);
        }
    }

    fn counter(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let (id, value) = if data_is_null(data) {
            ("default".to_string(), Decimal::ONE)
        } else {
            let Some(m) = data.and_then(wire::members) else {
                return;
            };
            let id = match m.get("id").map(wire::classify) {
                None | Some(Json::Null | Json::Bool(false) | Json::Int("0" | "-0")) => {
                    "default".to_string()
                }
                Some(Json::Str(s)) if s.is_empty() => "default".to_string(),
                Some(Json::Str(s)) => s,
                Some(Json::Int(i)) => i.to_string(),
                Some(_) => return,
            };
            let parsed = match m.get("value").map(wire::classify) {
                None | Some(Json::Array | Json::Object) => return,
                Some(Json::Int(n) | Json::Number(n)) => Decimal::parse(n),
                Some(Json::Str(s)) => {
                    let t = js_trim(&s);
                    if t.is_empty() {
                        Some(Ok(Decimal::ZERO))
                    } else {
                        Decimal::parse(t)
                    }
                }
                Some(Json::Bool(true)) => Some(Ok(Decimal::ONE)),
                Some(Json::Bool(false) | Json::Null) => Some(Ok(Decimal::ZERO)),
            };
            match parsed {
                None => return,
                Some(Err(_)) => return self.error(conn, "Counter out of range", now, out),
                Some(Ok(v)) => (id, v),
            }
        };
        if id.len() > self.cfg.max_id_bytes {
            return self.limit(conn, "max_id_bytes", now, out);
        }
        let max = self.cfg.max_counters;
        let Some((room, conns)) = self.parts(conn) else {
            return;
        };
        let (old, seq) = match room.counters.map.get(&id) {
            Some(c) => (c.value, c.seq),
            None if room.counters.len() >= max => {
                return self.limit(conn, "max_counters", now, out);
            }
            None => (Decimal::ZERO, room.next_counter_seq),
        };
        let Some(sum) = old.checked_add(value) else {
            return self.error(conn, "Counter out of range", now, out);
        };
        if seq == room.next_counter_seq {
            room.next_counter_seq += 1;
        }
        room.counters
            .insert(id.clone(), Counter { value: sum, seq });
        let f = counter_frame(&id, sum);
        deliver_all(conns, f, now, out, |each| {
            room.subscribers("counter", &id, each)
        });
        let op = store::Op::Counter {
            room: room.name.clone(),
            id,
            seq,
            value: sum.to_string(),
        };
        self.push(op);
    }

    fn authenticate(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let Some(signing) = self.signing_key.clone() else {
            return;
        };
        let Some(m) = data.and_then(wire::members) else {
            return;
        };
        let Some(Json::Str(key)) = m.get("key").map(wire::classify) else {
            return;
        };
        let (text, value) = match m.get("ts") {
            None => ("undefined".to_string(), None),
            Some(raw) => match wire::classify(raw) {
                Json::Int(i) => (i.to_string(), Decimal::parse(i)),
                Json::Str(s) => {
                    let v = Decimal::parse(js_trim(&s));
                    (s, v)
                }
                _ => (wire::minify(raw.get()), None),
            },
        };
        let now_dec = Decimal::from_int(now as i64);
        let diff = match value {
            Some(Ok(v)) => v.checked_add(now_dec.negated()).map(Decimal::abs),
            _ => None,
        };
        let window = Decimal::from_int(self.cfg.admin_ts_window_ms as i64);
        let in_window = diff.is_some_and(|d| d.cmp_value(window).is_le());
        if !in_window {
            let d = diff.map_or_else(|| "NaN".to_string(), |d| d.to_string());
            let msg = format!("Wrong timestamp. Received {text} but now is {now} Diff is {d}");
            return self.error(conn, &msg, now, out);
        }
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let mut h = sha2::Sha256::new();
        h.update(c.room.as_bytes());
        h.update(text.as_bytes());
        h.update(signing.as_bytes());
        let want = super::state::hex(&h.finalize());
        let got = key.to_ascii_lowercase();
        if constant_time_eq(want.as_bytes(), got.as_bytes()) {
            if let Some(c) = self.conns.get_mut(conn) {
                c.admin = true;
            }
            let p = self.profile_frame(conn);
            self.send_text(conn, &p, now, out);
        }
    }

    fn config(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let Some(d) = data else { return };
        let text = match wire::classify(d) {
            Json::Str(s) => s,
            _ => wire::minify(d.get()),
        };
        if text.len() > self.cfg.max_config_bytes {
            return self.limit(conn, "max_config_bytes", now, out);
        }
        let Some((room, conns)) = self.parts(conn) else {
            return;
        };
        let f = frame::text(&wire::typed("config", &wire::json_str(&text)));
        room.config = text.clone();
        deliver_all(conns, f, now, out, |each| {
            room.conns.iter().for_each(|&to| each(to))
        });
        let op = store::Op::Config {
            room: room.name.clone(),
            text,
        };
        self.push(op);
    }

    fn broadcast(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let Some(m) = data.and_then(wire::members) else {
            return;
        };
        let Some(Json::Str(kind)) = m.get("type").map(wire::classify) else {
            return;
        };
        let to = match m.get("to").map(wire::classify) {
            None | Some(Json::Null) => None,
            Some(Json::Str(s)) if s.is_empty() => None,
            Some(Json::Str(s)) => Some(s),
            Some(_) => return,
        };
        let f = frame::text(&match m.get("data") {
            Some(d) => wire::typed(&kind, &wire::minify(d.get())),
            None => wire::typed_bare(&kind),
        });
        let Some((room, conns)) = self.parts(conn) else {
            return;
        };
        match to {
            None => {
                deliver_all(conns, f, now, out, |each| {
                    room.conns.iter().for_each(|&c| each(c))
                });
            }
            Some(s) => {
                let (t, id) = event_id(&s);
                if !t.is_empty() {
                    deliver_all(conns, f, now, out, |each| room.subscribers(t, id, each));
                }
            }
        }
    }

    fn relay(
        &mut self,
        conn: ConnId,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let Some(Json::Str(kind)) = data.map(wire::classify) else {
            return;
        };
        if kind.len() > self.cfg.max_id_bytes {
            return self.limit(conn, "max_id_bytes", now, out);
        }
        let max = self.cfg.max_relays_per_connection;
        let Some((room, conns)) = self.parts(conn) else {
            return;
        };
        if room.relays.iter().any(|(c, k)| *c == conn && *k == kind) {
            return;
        }
        let Some(c) = conns.get_mut(conn) else { return };
        if c.relays >= max {
            return self.limit(conn, "max_relays_per_connection", now, out);
        }
        c.relays += 1;
        room.relays.push((conn, kind));
    }

    fn delete_relay(&mut self, conn: ConnId, data: Option<&RawValue>) {
        let which = match data.map(wire::classify) {
            None | Some(Json::Null) => None,
            Some(Json::Str(s)) if s.is_empty() => None,
            Some(Json::Str(s)) => Some(s),
            Some(_) => return,
        };
        let Some((room, conns)) = self.parts(conn) else {
            return;
        };
        room.relays
            .retain(|(c, k)| *c != conn || which.as_ref().is_some_and(|w| w != k));
        let left = room.relays.iter().filter(|(c, _)| *c == conn).count();
        if let Some(c) = conns.get_mut(conn) {
            c.relays = left;
        }
    }

    /// After a message's own effects: a copy to every admin relaying its type.
    fn relay_copies(
        &mut self,
        conn: ConnId,
        kind: &str,
        data: Option<&RawValue>,
        now: Millis,
        out: &mut Outbox<RoomsMsg>,
    ) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let Some(room) = self.rooms.get(&c.room) else {
            return;
        };
        if !room.relays.iter().any(|(_, k)| k == kind) {
            return;
        }
        let mut body = String::from("{\"data\":{\"type\":");
        wire::push_str(&mut body, kind);
        if let Some(d) = data {
            body.push_str(",\"data\":");
            wire::minify_into(d.get(), &mut body);
        }
        body.push_str(",\"user\":");
        body.push_str(&self.private_details(conn));
        body.push_str("},\"type\":");
        wire::push_str(&mut body, &format!("relay:{kind}"));
        body.push('}');
        let f = frame::text(&body);
        let targets: Vec<ConnId> = room
            .relays
            .iter()
            .filter(|(_, k)| k == kind)
            .map(|(c, _)| *c)
            .collect();
        for to in targets {
            deliver(&mut self.conns, to, f.clone(), now, out);
        }
    }
}

fn counter_frame(id: &str, value: Decimal) -> Frame {
    let mut data = String::from("{\"id\":");
    wire::push_str(&mut data, id);
    data.push_str(&format!(",\"value\":{value}}}"));
    frame::text(&wire::typed("counter", &data))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_split_at_the_first_colon() {
        assert_eq!(event_id("poll"), ("poll", "all"));
        assert_eq!(event_id("poll:"), ("poll", "all"));
        assert_eq!(event_id("poll:a:b"), ("poll", "a:b"));
        assert_eq!(event_id(":x"), ("", "x"));
    }
}
