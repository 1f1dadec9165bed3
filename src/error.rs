//! Faults: whose fault a disconnect is, and what goes on the wire for it.

/// Why a connection ended, as counted in `switchboard_disconnects_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disconnect {
    /// The client sent a Close frame.
    ClientClose,
    /// The TCP connection ended or failed without a closing handshake.
    ConnectionLost,
    /// A message or frame over the app's limit: close 1009.
    MessageTooBig,
    /// A text message that is not UTF-8: close 1007.
    InvalidUtf8,
    /// Any other RFC 6455 violation: close 1002.
    ProtocolError,
    /// The client did not read its queued output: close 1008.
    SlowConsumer,
    /// Nothing arrived for a ping interval plus the pong timeout: dropped.
    PingTimeout,
    /// Queued output made no progress for the write-stall deadline: dropped.
    WriteStall,
    /// The app closed the connection.
    AppClose,
    /// The server is shutting down: close 1001.
    Shutdown,
    /// More data messages in one second than `max_messages_per_sec`: close 1008.
    RateLimited,
}

impl Disconnect {
    pub const ALL: [Disconnect; 11] = [
        Disconnect::ClientClose,
        Disconnect::ConnectionLost,
        Disconnect::MessageTooBig,
        Disconnect::InvalidUtf8,
        Disconnect::ProtocolError,
        Disconnect::SlowConsumer,
        Disconnect::PingTimeout,
        Disconnect::WriteStall,
        Disconnect::AppClose,
        Disconnect::Shutdown,
        Disconnect::RateLimited,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Disconnect::ClientClose => "client_close",
            Disconnect::ConnectionLost => "connection_lost",
            Disconnect::MessageTooBig => "message_too_big",
            Disconnect::InvalidUtf8 => "invalid_utf8",
            Disconnect::ProtocolError => "protocol_error",
            Disconnect::SlowConsumer => "slow_consumer",
            Disconnect::PingTimeout => "ping_timeout",
            Disconnect::WriteStall => "write_stall",
            Disconnect::AppClose => "app_close",
            Disconnect::Shutdown => "shutdown",
            Disconnect::RateLimited => "rate_limited",
        }
    }

    /// The Close frame the server sends for this reason, if any (`None`: drop the TCP
    /// connection without a closing handshake, or the client already closed).
    pub fn close_frame(self) -> Option<(u16, &'static str)> {
        match self {
            Disconnect::MessageTooBig => Some((1009, "Message too big")),
            Disconnect::InvalidUtf8 => Some((1007, "Invalid UTF-8")),
            Disconnect::ProtocolError => Some((1002, "Protocol error")),
            Disconnect::SlowConsumer => Some((1008, "Slow consumer")),
            Disconnect::Shutdown => Some((1001, "Server shutting down")),
            Disconnect::RateLimited => Some((1008, "Too many messages")),
            Disconnect::ClientClose
            | Disconnect::ConnectionLost
            | Disconnect::PingTimeout
            | Disconnect::WriteStall
            | Disconnect::AppClose => None,
        }
    }

    /// Maps a tungstenite read error to the reason and wire answer.
    pub fn from_ws_error(err: &tungstenite::Error) -> Disconnect {
        use tungstenite::Error as E;
        use tungstenite::error::ProtocolError as P;
        match err {
            E::Capacity(_) => Disconnect::MessageTooBig,
            E::Utf8(_) => Disconnect::InvalidUtf8,
            E::Protocol(P::ResetWithoutClosingHandshake) => Disconnect::ConnectionLost,
            E::Protocol(_) => Disconnect::ProtocolError,
            E::ConnectionClosed | E::AlreadyClosed => Disconnect::ClientClose,
            _ => Disconnect::ConnectionLost,
        }
    }
}

/// Why a request was refused before the upgrade, as counted in
/// `switchboard_handshake_rejects_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    Timeout,
    HeadersTooLarge,
    BadRequest,
    BadUpgrade,
    Origin,
    PerIpCap,
    GlobalCap,
    /// The app answered the request itself (404, 401, 426 for plain HTTP, …).
    AppAnswer,
    Draining,
}

impl Reject {
    pub const ALL: [Reject; 9] = [
        Reject::Timeout,
        Reject::HeadersTooLarge,
        Reject::BadRequest,
        Reject::BadUpgrade,
        Reject::Origin,
        Reject::PerIpCap,
        Reject::GlobalCap,
        Reject::AppAnswer,
        Reject::Draining,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reject::Timeout => "timeout",
            Reject::HeadersTooLarge => "headers_too_large",
            Reject::BadRequest => "bad_request",
            Reject::BadUpgrade => "bad_upgrade",
            Reject::Origin => "origin",
            Reject::PerIpCap => "per_ip_cap",
            Reject::GlobalCap => "global_cap",
            Reject::AppAnswer => "app_answer",
            Reject::Draining => "draining",
        }
    }
}
