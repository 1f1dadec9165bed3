//! Plain HTTP requests answered by an app (`Route::Http`), on the reactor that owns them:
//! read the body by `Content-Length` or `Transfer-Encoding: chunked`, hand the request to
//! the app, and write the app's answer whenever it comes (long-polling holds a request).
//!
//! The app hears of a body before it is read (`Event::HttpReading`), so it can refuse a
//! request that overlaps another one (pester: a second POST while one is being read).
//! After the answer, an HTTP/1.1 connection stays open for its next request
//! (`http_keep_alive_ms`) unless the client asked to close or part of the body was left
//! unread.

use super::Reactor;
use super::conn::{HttpBody, HttpHeld, Phase};
use super::dispatch::CoreEvent;
use super::inbox::Envelope;
use crate::error::Reject;
use crate::http::{self, Chunked, Request, Response, Status};
use crate::router::ConnId;
use std::io::{self, Read};

impl Reactor {
    /// A request the app wants to answer, on the reactor that owns it: read its body,
    /// then give it to the app.
    pub(super) fn app_request(
        &mut self,
        key: usize,
        mut req: Request,
        mut leftover: Vec<u8>,
        max_body: Option<usize>,
    ) {
        let Some(app) = self.conns.get(key).and_then(|c| c.app) else {
            return;
        };
        let cfg = &self.shared.config;
        let max = max_body.unwrap_or(cfg.app(app).max_message_bytes);
        let keep_alive = cfg.http_keep_alive_ms > 0 && http::wants_keep_alive(&req);
        let encoding = req
            .header("transfer-encoding")
            .map(|v| v.trim().to_ascii_lowercase());
        let (need, chunked) = match encoding.as_deref() {
            None | Some("identity") => match req.header("content-length").map(str::trim) {
                None => (0, None),
                Some(v) => match v.parse::<usize>() {
                    Ok(n) => (n, None),
                    Err(_) => {
                        let r = Response::text(Status::BAD_REQUEST, "Invalid Content-Length");
                        return self.respond(key, r, Some(Reject::BadRequest));
                    }
                },
            },
            Some("chunked") => (max, Some(max_body.is_some())),
            Some(_) => {
                let r = Response::text(
                    Status(501, "Not Implemented"),
                    "Unsupported Transfer-Encoding",
                );
                return self.respond(key, r, Some(Reject::BadRequest));
            }
        };
        if chunked.is_none() {
            if need > max && max_body.is_some() {
                // The app answers (and may act on it); the unread body is discarded while
                // the app holds the request, and the answer closes the connection.
                req.body_too_large = true;
                let held = HttpHeld {
                    keep_alive: false,
                    next: Vec::new(),
                };
                return self.give_to_app(key, req, Vec::new(), held);
            }
            if need > max {
                let r = Response::status(Status::PAYLOAD_TOO_LARGE);
                return self.respond(key, r, Some(Reject::AppAnswer));
            }
            if leftover.len() >= need {
                let next = leftover.split_off(need);
                return self.give_to_app(key, req, leftover, HttpHeld { keep_alive, next });
            }
        }
        // A body is still to come: the app hears of it first, and may answer at once (the
        // unread body then closes the connection after the answer).
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.phase = Phase::held_then_close();
        c.opened = true;
        let id = c.id;
        self.dispatch(
            app,
            CoreEvent::HttpReading {
                conn: id,
                req: &req,
            },
        );
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.id != id || !matches!(c.phase, Phase::HttpApp(_)) {
            return;
        }
        c.phase = Phase::HttpBody(Box::new(HttpBody {
            req,
            body: leftover,
            need,
            chunked,
            keep_alive,
        }));
        c.readable = true;
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
        let mut next = Vec::new();
        loop {
            if chunked.is_some() {
                match http::dechunk(body, *need) {
                    Chunked::Partial if body.len() <= raw_cap => {}
                    Chunked::Partial | Chunked::TooLarge => return self.body_too_large(key),
                    Chunked::Invalid => {
                        let r = Response::text(Status::BAD_REQUEST, "Invalid chunked body");
                        return self.respond(key, r, Some(Reject::BadRequest));
                    }
                    Chunked::Complete(decoded, used) => {
                        next = body.split_off(used);
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
                Ok(0) => return self.client_left(key),
                Ok(n) => body.extend_from_slice(&self.scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.readable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.client_left(key),
            }
        }
        // Placeholder until `give_to_app` sets the phase.
        let phase = std::mem::replace(&mut c.phase, Phase::Dead);
        if let Phase::HttpBody(b) = phase {
            let HttpBody {
                req,
                body,
                keep_alive,
                ..
            } = *b;
            self.give_to_app(key, req, body, HttpHeld { keep_alive, next });
        }
    }

    /// A chunked body past its cap: the app answers when it asked for oversize requests
    /// (`Route::Http { max_body: Some(..) }`), the core answers 413 otherwise.
    fn body_too_large(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        // Placeholder, as in `read_body`; both branches below set the phase.
        let phase = std::mem::replace(&mut c.phase, Phase::held_then_close());
        let Phase::HttpBody(b) = phase else {
            return;
        };
        let HttpBody {
            mut req, chunked, ..
        } = *b;
        if chunked == Some(true) {
            req.body_too_large = true;
            let held = HttpHeld {
                keep_alive: false,
                next: Vec::new(),
            };
            return self.give_to_app(key, req, Vec::new(), held);
        }
        let r = Response::status(Status::PAYLOAD_TOO_LARGE);
        self.respond(key, r, Some(Reject::AppAnswer));
    }

    /// The app gets the request; the connection waits for its answer.
    fn give_to_app(&mut self, key: usize, req: Request, body: Vec<u8>, held: HttpHeld) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(app) = c.app else { return };
        c.phase = Phase::HttpApp(Box::new(held));
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
        // Notice a client that already left (or, answered and kept alive, its next request).
        self.on_readable(key);
    }

    /// The client went away before its request was answered.
    fn client_left(&mut self, key: usize) {
        self.owe_closed(key);
        self.drop_now(key);
    }

    /// While the app holds a request: input is kept as the start of the next request (up
    /// to the header cap; past it the connection closes after the answer); EOF means the
    /// client left.
    pub(super) fn watch_http_app(&mut self, key: usize) {
        let max_head = self.shared.config.max_header_bytes;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Phase::HttpApp(held) = &mut c.phase else {
            return;
        };
        loop {
            match c.sock.read(&mut self.scratch) {
                Ok(0) => break,
                Ok(n) if held.keep_alive && held.next.len() + n <= max_head => {
                    held.next.extend_from_slice(&self.scratch[..n]);
                }
                Ok(_) => {
                    held.keep_alive = false;
                    held.next = Vec::new();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.readable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.client_left(key);
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
        if c.id != to || !matches!(c.phase, Phase::HttpApp(_)) {
            return;
        }
        // Answered: the app is not owed a Closed for it any more.
        c.opened = false;
        let Phase::HttpApp(held) = std::mem::replace(&mut c.phase, Phase::held_then_close()) else {
            return;
        };
        if held.keep_alive {
            self.respond_keep_alive(key, r, held.next);
        } else {
            self.respond(key, r, None);
        }
    }
}
