//! echo: every text or binary message goes back to its sender unchanged. Opt-in (off
//! unless `--apps echo`): it exists so the Autobahn fuzzingclient can test the core's
//! WebSocket handling (framing, fragmentation, UTF-8, close codes, ping/pong) without any
//! app protocol in the way (`tests/autobahn/run.sh`).

use super::{App, Event, Millis, Outbox, Route};
use crate::frame;
use crate::http::{Request, Response, Status};

/// Echo instances never post to each other.
#[derive(Debug, PartialEq)]
pub enum Never {}

/// Any path upgrades; plain HTTP gets 426.
pub fn route(_req: &Request, websocket: bool) -> Route {
    if !websocket {
        return Route::Respond(Response::text(Status::UPGRADE_REQUIRED, "Upgrade Required"));
    }
    Route::Upgrade {
        owner: None,
        headers: Vec::new(),
        max_message_bytes: None,
    }
}

/// Stateless: the reactor already tracks the connections.
#[derive(Default)]
pub struct Echo;

impl App for Echo {
    type Msg = Never;

    fn handle(&mut self, event: Event<'_, Never>, _now: Millis, out: &mut Outbox<Never>) {
        match event {
            Event::Text { conn, text } => out.send(conn, frame::transient_text(text)),
            Event::Binary { conn, data } => {
                out.send(conn, frame::transient(frame::OP_BINARY, data))
            }
            Event::Remote(never) => match never {},
            Event::Opened { .. }
            | Event::Closed { .. }
            | Event::Http { .. }
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
    fn text_and_binary_go_back_to_the_sender_only() {
        let mut h = Harness::new(Echo);
        let (a, b) = (conn(1), conn(2));
        h.open(a, "/");
        h.open(b, "/any/path");
        h.text(a, "hé").expect_texts(&[(a, "hé")]);
        h.binary(b, &[0, 255])
            .expect_frames(&[(b, vec![0x82, 2, 0, 255])]);
        h.text(b, "").expect_texts(&[(b, "")]);
        h.close(a);
        h.text(b, "x").expect_texts(&[(b, "x")]);
    }
}
