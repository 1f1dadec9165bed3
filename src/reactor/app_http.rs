//! Plain HTTP requests answered by an app (`Route::Http`): read the body by
//! `Content-Length` or `Transfer-Encoding: chunked`, move the request to the owner reactor, hand it to the app, and write
//! the app's answer whenever it comes (long-polling holds a request open).
//!
//! One request per TCP connection: every answer carries `Connection: close`.

use super::Reactor;
use super::conn::{HttpBody, Phase};
use super::dispatch::CoreEvent;
use super::inbox::{Envelope, HandoffKind};
use crate::error::Reject;
use crate::http::{self, Chunked, Request, Response, Status};
use crate::router::{ConnId, owner_of};
use std::io::{self, Read};

impl Reactor {
    /// A request the app wants to answer: read its body, then give it to the owner.
    pub(super) fn app_request(
        &mut self,
        key: usize,
        mut req: Request,
        mut leftover: Vec<u8>,
        owner: Option<Vec<u8>>,
        max_body: Option<usize>,
    ) {
        let Some(app) = self.conns.get(key).and_then(|c| c.app) else {
            return;
        };
        let max = max_body.unwrap_or(self.shared.config.app(app).max_message_bytes);
        let chunked = req
            .header("transfer-encoding")
            .map(|v| v.trim().to_ascii_lowercase());
        match chunked.as_deref() {
            None | Some("identity") => {}
            Some("chunked") => {
                if let Some(c) = self.conns.get_mut(key) {
                    c.phase = Phase::HttpBody(Box::new(HttpBody {
                        req,
                        body: leftover,
                        need: max,
                        owner,
                        chunked: Some(max_body.is_some()),
                    }));
                    c.readable = true;
                }
                return self.read_body(key);
            }
            Some(_) => {
                let r = Response::text(
                    Status(501, "Not Implemented"),
                    "Unsupported Transfer-Encoding",
                );
                return self.respond(key, r, Some(Reject::BadRequest));
            }
        }
        let need = match req.header("content-length").map(str::trim) {
            None => 0,
            Some(v) => match v.parse::<usize>() {
                Ok(n) => n,
                Err(_) => {
                    let r = Response::text(Status::BAD_REQUEST, "Invalid Content-Length");
                    return self.respond(key, r, Some(Reject::BadRequest));
                }
            },
        };
        if need > max && max_body.is_some() {
            // The app answers (and may act on it); the unread body is discarded while
            // the app holds the request.
            req.body_too_large = true;
            return self.route_to_app(key, req, Vec::new(), owner);
        }
        if need > max {
            let r = Response::status(Status::PAYLOAD_TOO_LARGE);
            return self.respond(key, r, Some(Reject::AppAnswer));
        }
        if leftover.len() >= need {
            leftover.truncate(need);
            return self.route_to_app(key, req, leftover, owner);
        }
        if let Some(c) = self.conns.get_mut(key) {
            c.phase = Phase::HttpBody(Box::new(HttpBody {
                req,
                body: leftover,
                need,
                owner,
                chunked: None,
            }));
            c.readable = true;
        }
        self.read_body(key);
    }

    /// Reads more of a request body (bounded by the handshake deadline). A chunked body
    /// is kept raw in `body` and decoded after each read; `need` is then its decoded cap.
    pub(super) fn read_body(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Phase::HttpBody(b) = &mut c.phase else {
            return;
        };
        let HttpBody {
            body,
            need,
            chunked,
            ..
        } = &mut **b;
        let raw_cap = need.saturating_mul(2).saturating_add(4096);
        loop {
            if chunked.is_some() {
                match http::dechunk(body, *need) {
                    Chunked::Partial if body.len() <= raw_cap => {}
                    Chunked::Partial | Chunked::TooLarge => return self.body_too_large(key),
                    Chunked::Invalid => {
                        let r = Response::text(Status::BAD_REQUEST, "Invalid chunked body");
                        return self.respond(key, r, Some(Reject::BadRequest));
                    }
                    Chunked::Complete(decoded) => {
                        *body = decoded;
                        break;
                    }
                }
            } else if body.len() >= *need {
                break;
            }
            let want = if chunked.is_some() {
                self.scratch.len()
            } else {
                (*need - body.len()).min(self.scratch.len())
            };
            match c.sock.read(&mut self.scratch[..want]) {
                Ok(0) => return self.drop_now(key),
                Ok(n) => body.extend_from_slice(&self.scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.readable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_now(key),
            }
        }
        // Placeholder: `route_to_app` gives the request to the app (`HttpApp`) or moves the
        // socket to another reactor.
        let phase = std::mem::replace(&mut c.phase, Phase::HttpApp);
        if let Phase::HttpBody(b) = phase {
            let HttpBody {
                req, body, owner, ..
            } = *b;
            self.route_to_app(key, req, body, owner);
        }
    }

    /// A chunked body past its cap: the app answers when it asked for oversize requests
    /// (`Route::Http { max_body: Some(..) }`), the core answers 413 otherwise.
    fn body_too_large(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        // Placeholder, as in `read_body`; `respond` below sets `Closing`.
        let phase = std::mem::replace(&mut c.phase, Phase::HttpApp);
        let Phase::HttpBody(b) = phase else {
            return;
        };
        let HttpBody {
            mut req,
            owner,
            chunked,
            ..
        } = *b;
        if chunked == Some(true) {
            req.body_too_large = true;
            return self.route_to_app(key, req, Vec::new(), owner);
        }
        let r = Response::status(Status::PAYLOAD_TOO_LARGE);
        self.respond(key, r, Some(Reject::AppAnswer));
    }

    fn route_to_app(&mut self, key: usize, req: Request, body: Vec<u8>, owner: Option<Vec<u8>>) {
        let target = owner.map_or(self.me, |k| owner_of(&k, self.shared.reactors));
        if target == self.me {
            self.give_to_app(key, req, body);
        } else {
            self.hand_off(key, target, req, HandoffKind::Http { body });
        }
    }

    /// The app gets the request; the connection waits for its answer.
    pub(super) fn give_to_app(&mut self, key: usize, req: Request, body: Vec<u8>) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(app) = c.app else { return };
        c.phase = Phase::HttpApp;
        c.opened = true;
        c.readable = true;
        let id = c.id;
        self.dispatch(
            app,
            CoreEvent::Http {
                conn: id,
                req: &req,
                body: &body,
            },
        );
        // Notice a client that already left.
        self.on_readable(key);
    }

    /// While the app holds a request: input is discarded; EOF means the client left.
    pub(super) fn watch_http_app(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        loop {
            match c.sock.read(&mut self.scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.readable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        c.phase = Phase::Dead;
        self.to_drop.push(key);
        self.owe_closed(key);
    }

    /// The app's answer to an [`crate::apps::Event::Http`] request, for a connection here
    /// or on another reactor.
    pub(super) fn app_respond(&mut self, to: ConnId, r: Response) {
        if usize::from(to.reactor) != self.me {
            if let Some(batch) = self.outgoing.get_mut(usize::from(to.reactor)) {
                batch.push(Envelope::Respond(to, r));
            }
            return;
        }
        let key = to.slot as usize;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.id != to || !matches!(c.phase, Phase::HttpApp) {
            return;
        }
        // Answered: the app is not owed a Closed for it any more.
        c.opened = false;
        self.respond(key, r, None);
    }
}
