//! Command-line flags (each with an environment variable) and how they resolve into a
//! [`Config`]: defaults, then the `--config` TOML file, then the originals' `PORT`, then
//! environment variables, then flags.

use crate::config::{AppKind, Config, FileConfig, LogFormat, Secret, SessionSettings};
use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "One server for the pester, session, rooms, pair and signal WebSocket protocols"
)]
pub struct Cli {
    #[command(flatten)]
    pub opts: Opts,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration, print it, and exit.
    CheckConfig,
    /// Print a development token for the session app, signed with the configured secret.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The `userId` claim.
    #[arg(long)]
    pub user: String,
    /// The `roomId` claim.
    #[arg(long)]
    pub room: String,
    /// The `host` claim: the Host the client will connect to [default: localhost:<session port>].
    #[arg(long)]
    pub host: Option<String>,
    /// Seconds until `exp`; 0 leaves `exp` out.
    #[arg(long, default_value_t = 86_400)]
    pub ttl: u64,
}

/// The session app's settings (session.md, Limits).
#[derive(Debug, Args)]
pub struct SessionFlags {
    /// HMAC key of session tokens (prefer the environment variable).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Accepted JWT algorithms, comma-separated (HS256, HS384, HS512) [default: HS256].
    #[arg(
        long,
        env = "SWITCHBOARD_SESSION_JWT_ALGORITHMS",
        value_delimiter = ','
    )]
    pub session_jwt_algorithms: Option<Vec<String>>,
    /// Leeway for exp and nbf, seconds [default: 0].
    #[arg(long, env = "SWITCHBOARD_SESSION_JWT_LEEWAY_SECS")]
    pub session_jwt_leeway_secs: Option<u64>,
    /// Require the host claim to equal the Host header [default: true].
    #[arg(long, env = "SWITCHBOARD_SESSION_CHECK_HOST")]
    pub session_check_host: Option<bool>,
    /// Longest token; 401 over it [default: 8192].
    #[arg(long, env = "SWITCHBOARD_SESSION_MAX_TOKEN_BYTES")]
    pub session_max_token_bytes: Option<usize>,
    /// Messages kept per room [default: 100].
    #[arg(long, env = "SWITCHBOARD_SESSION_HISTORY_SIZE")]
    pub session_history_size: Option<usize>,
    /// Members per room; close 1008 over it [default: 100].
    #[arg(long, env = "SWITCHBOARD_SESSION_MAX_USERS_PER_ROOM")]
    pub session_max_users_per_room: Option<usize>,
    /// Longest message in UTF-16 units; longer ones are dropped [default: 1000].
    #[arg(long, env = "SWITCHBOARD_SESSION_MAX_MESSAGE_UNITS")]
    pub session_max_message_units: Option<usize>,
    /// One snapshot per room per reactor turn [default: true].
    #[arg(long, env = "SWITCHBOARD_SESSION_COALESCE_SNAPSHOTS")]
    pub session_coalesce_snapshots: Option<bool>,
    /// Seconds an empty room keeps its history [default: 3600].
    #[arg(long, env = "SWITCHBOARD_SESSION_EMPTY_ROOM_TTL_SECS")]
    pub session_empty_room_ttl_secs: Option<u64>,
    /// Rooms per reactor [default: 100000].
    #[arg(long, env = "SWITCHBOARD_SESSION_MAX_ROOMS")]
    pub session_max_rooms: Option<usize>,
}

impl SessionFlags {
    fn apply(&self, s: &mut SessionSettings) {
        macro_rules! set {
            ($($flag:ident => $field:ident),*) => {
                $( if let Some(v) = self.$flag.clone() { s.$field = v; } )*
            };
        }
        set!(
            session_jwt_algorithms => jwt_algorithms,
            session_jwt_leeway_secs => jwt_leeway_secs,
            session_check_host => check_host,
            session_max_token_bytes => max_token_bytes,
            session_history_size => history_size,
            session_max_users_per_room => max_users_per_room,
            session_max_message_units => max_message_units,
            session_coalesce_snapshots => coalesce_snapshots,
            session_empty_room_ttl_secs => empty_room_ttl_secs,
            session_max_rooms => max_rooms
        );
        if let Some(k) = &self.jwt_secret {
            s.jwt_secret = Some(Secret::from(k.clone())).filter(|k| !k.bytes().is_empty());
        }
    }
}

macro_rules! app_flags {
    ($($app:ident: $port:ident, $port_env:literal, $max:ident, $max_env:literal;)*) => {
        /// Per-app ports and limits.
        #[derive(Debug, Args)]
        pub struct AppFlags {
            $(
                #[arg(long, env = $port_env, help = concat!("Port of the ", stringify!($app), " app"))]
                pub $port: Option<u16>,
                #[arg(long, env = $max_env, help = concat!("Largest message for ", stringify!($app), " (bytes; close 1009 over it)"))]
                pub $max: Option<usize>,
            )*
        }

        impl AppFlags {
            fn apply(&self, cfg: &mut Config) {
                $(
                    if let Some(v) = self.$port { cfg.$app.port = v; }
                    if let Some(v) = self.$max { cfg.$app.max_message_bytes = v; }
                )*
            }
        }
    };
}

app_flags! {
    pester: pester_port, "SWITCHBOARD_PESTER_PORT", pester_max_message_bytes, "SWITCHBOARD_PESTER_MAX_MESSAGE_BYTES";
    session: session_port, "SWITCHBOARD_SESSION_PORT", session_max_message_bytes, "SWITCHBOARD_SESSION_MAX_MESSAGE_BYTES";
    rooms: rooms_port, "SWITCHBOARD_ROOMS_PORT", rooms_max_message_bytes, "SWITCHBOARD_ROOMS_MAX_MESSAGE_BYTES";
    pair: pair_port, "SWITCHBOARD_PAIR_PORT", pair_max_message_bytes, "SWITCHBOARD_PAIR_MAX_MESSAGE_BYTES";
    signal: signal_port, "SWITCHBOARD_SIGNAL_PORT", signal_max_message_bytes, "SWITCHBOARD_SIGNAL_MAX_MESSAGE_BYTES";
    bench: bench_port, "SWITCHBOARD_BENCH_PORT", bench_max_message_bytes, "SWITCHBOARD_BENCH_MAX_MESSAGE_BYTES";
    echo: echo_port, "SWITCHBOARD_ECHO_PORT", echo_max_message_bytes, "SWITCHBOARD_ECHO_MAX_MESSAGE_BYTES";
}

/// The signal app's limits (signal.md "Limits").
#[derive(Debug, Args)]
pub struct SignalFlags {
    /// Largest message on a held or piped signal connection [default: 16777216].
    #[arg(long, env = "SWITCHBOARD_SIGNAL_MAX_PIPE_MESSAGE_BYTES")]
    pub signal_max_pipe_message_bytes: Option<usize>,
    /// Payload a held signal connection may buffer; close 1009 over it [default: 1048576].
    #[arg(long, env = "SWITCHBOARD_SIGNAL_HOLD_BUFFER_BYTES")]
    pub signal_hold_buffer_bytes: Option<usize>,
    /// Seconds a signal connection may wait for its partner; 0 is forever [default: 0].
    #[arg(long, env = "SWITCHBOARD_SIGNAL_HOLD_TIMEOUT_SECS")]
    pub signal_hold_timeout_secs: Option<u64>,
    /// Longest id or key in a signal path; 400 over it [default: 256].
    #[arg(long, env = "SWITCHBOARD_SIGNAL_MAX_ID_BYTES")]
    pub signal_max_id_bytes: Option<usize>,
    /// Longest document key in a Join or Leave; longer ones are skipped [default: 256].
    #[arg(long, env = "SWITCHBOARD_SIGNAL_MAX_KEY_BYTES")]
    pub signal_max_key_bytes: Option<usize>,
    /// Most keys per introduction peer; close 1008 over it [default: 1024].
    #[arg(long, env = "SWITCHBOARD_SIGNAL_MAX_KEYS_PER_PEER")]
    pub signal_max_keys_per_peer: Option<usize>,
}

impl SignalFlags {
    fn apply(&self, cfg: &mut Config) {
        let l = &mut cfg.signal_limits;
        let pairs = [
            (
                self.signal_max_pipe_message_bytes,
                &mut l.max_pipe_message_bytes,
            ),
            (self.signal_hold_buffer_bytes, &mut l.hold_buffer_bytes),
            (self.signal_max_id_bytes, &mut l.max_id_bytes),
            (self.signal_max_key_bytes, &mut l.max_key_bytes),
            (self.signal_max_keys_per_peer, &mut l.max_keys_per_peer),
        ];
        for (flag, field) in pairs {
            if let Some(v) = flag {
                *field = v;
            }
        }
        if let Some(v) = self.signal_hold_timeout_secs {
            l.hold_timeout_secs = v;
        }
    }
}

/// The rooms app's own settings (the rest are in the TOML `[rooms]` section).
#[derive(Debug, Args)]
pub struct RoomsFlags {
    /// Admin signing key of the rooms app (unset: admin disabled).
    #[arg(long, env = "ADMIN_SIGNING_KEY", hide_env_values = true)]
    pub rooms_admin_signing_key: Option<String>,
    /// SQLite file of the rooms app [default: ./switchboard-data/rooms.db].
    #[arg(long, env = "SWITCHBOARD_ROOMS_STORE_PATH")]
    pub rooms_store_path: Option<PathBuf>,
    /// Most time a rooms change waits before it is written [default: 1000].
    #[arg(long, env = "SWITCHBOARD_ROOMS_FLUSH_INTERVAL_MS")]
    pub rooms_flush_interval_ms: Option<u64>,
    /// Connections per room; 503 over it [default: 10000].
    #[arg(long, env = "SWITCHBOARD_ROOMS_MAX_CONNECTIONS_PER_ROOM")]
    pub rooms_max_connections_per_room: Option<usize>,
    /// X-Socket-Server header of the rooms 101; empty sends none.
    #[arg(long, env = "SWITCHBOARD_ROOMS_SERVER_HEADER")]
    pub rooms_server_header: Option<String>,
}

impl RoomsFlags {
    fn apply(&self, cfg: &mut Config) {
        let o = &mut cfg.rooms_opts;
        if let Some(k) = &self.rooms_admin_signing_key {
            o.admin_signing_key = Some(crate::config::Secret::from(k.clone()));
        }
        if let Some(v) = &self.rooms_store_path {
            o.store_path = v.clone();
        }
        if let Some(v) = self.rooms_flush_interval_ms {
            o.flush_interval_ms = v;
        }
        if let Some(v) = self.rooms_max_connections_per_room {
            o.max_connections_per_room = v;
        }
        if let Some(v) = &self.rooms_server_header {
            o.server_header = v.clone();
        }
    }
}

macro_rules! pester_flags {
    ($($field:ident: $ty:ty, $flag:literal, $env:literal, $help:literal;)*) => {
        /// pester's own settings (`[pester]` in TOML).
        #[derive(Debug, Args)]
        pub struct PesterFlags {
            $(
                #[arg(long = $flag, env = $env, help = $help)]
                pub $field: Option<$ty>,
            )*
        }

        impl PesterFlags {
            fn apply(&self, cfg: &mut Config) {
                $( if let Some(v) = self.$field { cfg.pester_opts.$field = v; } )*
            }
        }
    };
}

pester_flags! {
    max_payload: usize, "pester-max-payload", "SWITCHBOARD_PESTER_MAX_PAYLOAD", "Engine.IO maxPayload (bytes) [default: 1000000]";
    ping_interval_ms: u64, "pester-ping-interval-ms", "SWITCHBOARD_PESTER_PING_INTERVAL_MS", "Engine.IO ping interval [default: 25000]";
    ping_timeout_ms: u64, "pester-ping-timeout-ms", "SWITCHBOARD_PESTER_PING_TIMEOUT_MS", "Engine.IO pong timeout [default: 20000]";
    upgrade_timeout_ms: u64, "pester-upgrade-timeout-ms", "SWITCHBOARD_PESTER_UPGRADE_TIMEOUT_MS", "Time for a probing WebSocket to upgrade [default: 10000]";
    connect_timeout_ms: u64, "pester-connect-timeout-ms", "SWITCHBOARD_PESTER_CONNECT_TIMEOUT_MS", "Time a session may stay without a namespace [default: 45000]";
    max_attachments: usize, "pester-max-attachments", "SWITCHBOARD_PESTER_MAX_ATTACHMENTS", "Binary attachments per Socket.IO packet [default: 10]";
    max_buffered_bytes: usize, "pester-max-buffered-bytes", "SWITCHBOARD_PESTER_MAX_BUFFERED_BYTES", "Packets queued per polling session [default: 1048576]";
    max_user_id_bytes: usize, "pester-max-user-id-bytes", "SWITCHBOARD_PESTER_MAX_USER_ID_BYTES", "Longest user id [default: 256]";
    max_channels_per_user: usize, "pester-max-channels-per-user", "SWITCHBOARD_PESTER_MAX_CHANNELS_PER_USER", "Channels per user [default: 1000]";
    max_pending_invites_per_user: usize, "pester-max-pending-invites-per-user", "SWITCHBOARD_PESTER_MAX_PENDING_INVITES_PER_USER", "Pending invites per invitee [default: 100]";
}

#[derive(Debug, Args)]
pub struct Opts {
    /// TOML file with settings (flags and environment variables win over it).
    #[arg(long, env = "SWITCHBOARD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Validate the configuration and exit (same as the check-config command).
    #[arg(long)]
    pub check_config: bool,
    /// Apps to run, comma-separated (default: every app built in, except bench and echo).
    #[arg(long, env = "SWITCHBOARD_APPS", value_delimiter = ',')]
    pub apps: Option<Vec<String>>,
    /// Reactor threads (default: one per available core).
    #[arg(long, env = "SWITCHBOARD_THREADS")]
    pub threads: Option<usize>,
    /// Address every listener binds to [default: 0.0.0.0].
    #[arg(long, env = "SWITCHBOARD_BIND")]
    pub bind: Option<IpAddr>,
    /// Admin port for /healthz, /readyz and /metrics [default: 9000].
    #[arg(long, env = "SWITCHBOARD_ADMIN_PORT")]
    pub admin_port: Option<u16>,
    /// Do not serve the admin port.
    #[arg(long, env = "SWITCHBOARD_NO_ADMIN")]
    pub no_admin: bool,
    #[command(flatten)]
    pub app: AppFlags,
    #[command(flatten)]
    pub signal: SignalFlags,
    #[command(flatten)]
    pub session: SessionFlags,
    #[command(flatten)]
    pub rooms: RoomsFlags,
    #[command(flatten)]
    pub pester: PesterFlags,
    /// Connections per process; HTTP 503 over it [default: 100000].
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connections per client address; HTTP 429 over it; 0 is off [default: 0].
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Largest request head; 431 over it [default: 16384].
    #[arg(long, env = "SWITCHBOARD_MAX_HEADER_BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Most request headers; 431 over it [default: 64].
    #[arg(long, env = "SWITCHBOARD_MAX_HEADERS")]
    pub max_headers: Option<usize>,
    /// Time for the whole request head [default: 10000].
    #[arg(long, env = "SWITCHBOARD_HANDSHAKE_TIMEOUT_MS")]
    pub handshake_timeout_ms: Option<u64>,
    /// Server Ping period [default: 25000].
    #[arg(long, env = "SWITCHBOARD_WS_PING_INTERVAL_MS")]
    pub ws_ping_interval_ms: Option<u64>,
    /// Silence after a ping period before a peer is dropped [default: 20000].
    #[arg(long, env = "SWITCHBOARD_WS_PONG_TIMEOUT_MS")]
    pub ws_pong_timeout_ms: Option<u64>,
    /// Queued output per connection before close 1008 [default: 1048576].
    #[arg(long, env = "SWITCHBOARD_MAX_OUTBOUND_BYTES")]
    pub max_outbound_bytes: Option<usize>,
    /// Time queued output may make no progress; 0 is off [default: 30000].
    #[arg(long, env = "SWITCHBOARD_WRITE_STALL_TIMEOUT_MS")]
    pub write_stall_timeout_ms: Option<u64>,
    /// Data messages per connection per second; close 1008 over it; 0 is off [default: 0].
    #[arg(long, env = "SWITCHBOARD_MAX_MESSAGES_PER_SEC")]
    pub max_messages_per_sec: Option<u32>,
    /// Wait for the peer after the server's Close or HTTP answer [default: 2000].
    #[arg(long, env = "SWITCHBOARD_CLOSE_LINGER_MS")]
    pub close_linger_ms: Option<u64>,
    /// Idle time of a kept-alive HTTP connection between requests; 0 closes after every answer [default: 5000].
    #[arg(long, env = "SWITCHBOARD_HTTP_KEEP_ALIVE_MS")]
    pub http_keep_alive_ms: Option<u64>,
    /// Read buffer per WebSocket; reads are staged through a shared 64 KiB buffer [default: 256].
    #[arg(long, env = "SWITCHBOARD_READ_BUFFER_BYTES")]
    pub read_buffer_bytes: Option<usize>,
    /// Queued bytes on one side of a pipe above which the other side is not read [default: 1048576].
    #[arg(long, env = "SWITCHBOARD_PIPE_HIGH_WATER_BYTES")]
    pub pipe_high_water_bytes: Option<usize>,
    /// Allowed Origin values, comma-separated (default: any origin).
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Proxies whose X-Forwarded-For is believed, comma-separated.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<IpAddr>>,
    /// Drain time after SIGTERM before exit [default: 10000].
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE_MS")]
    pub shutdown_grace_ms: Option<u64>,
    /// Log format [default: text].
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or switchboard=debug [default: info].
    #[arg(long, env = "SWITCHBOARD_LOG")]
    pub log_level: Option<String>,
}

impl Opts {
    /// Resolves the configuration. `port_env` is the originals' `PORT` variable.
    pub fn resolve(&self, port_env: Option<&str>) -> Result<Config, String> {
        self.resolve_noted(port_env).map(|(cfg, _)| cfg)
    }

    /// Resolves the configuration, with the warnings to log at startup: the session app
    /// left out for want of a secret (unless `--apps` asked for it: then an error), or a
    /// secret shorter than RFC 7518 wants.
    pub fn resolve_noted(&self, port_env: Option<&str>) -> Result<(Config, Vec<String>), String> {
        let mut cfg = Config::default();
        let mut notes = Vec::new();
        if let Some(path) = &self.config {
            FileConfig::load(path)?.apply(&mut cfg);
        }
        if let Some(list) = &self.apps {
            let mut chosen = Vec::new();
            for name in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
                chosen.push(AppKind::parse(name).ok_or_else(|| {
                    format!(
                        "unknown app {name:?} (known: pester, session, rooms, pair, signal, bench, echo)"
                    )
                })?);
            }
            for kind in AppKind::ALL {
                cfg.app_mut(kind).enabled = chosen.contains(&kind);
            }
        }
        self.session.apply(&mut cfg.session_settings);
        if cfg.session.enabled {
            match cfg
                .session_settings
                .jwt_secret
                .as_ref()
                .map(|k| k.bytes().len())
            {
                None if self.apps.is_some() => {
                    return Err("the session app needs a secret: set JWT_SECRET (or \
                        session.jwt_secret in the config file), or leave session out of --apps"
                        .into());
                }
                None => {
                    cfg.session.enabled = false;
                    notes.push(
                        "session app not started: JWT_SECRET is not set (nor \
                        session.jwt_secret); the other apps run"
                            .to_string(),
                    );
                }
                Some(n) if n < 32 => notes.push(format!(
                    "JWT_SECRET is {n} bytes long; RFC 7518 section 3.2 requires at least 32 \
                     bytes for HS256; the session app starts anyway"
                )),
                Some(_) => {}
            }
        }
        if let Some(port) = port_env.filter(|p| !p.is_empty()) {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("PORT={port:?} is not a port number"))?;
            match cfg.enabled_apps()[..] {
                [only] => cfg.app_mut(only).port = port,
                _ => {
                    return Err("PORT is set but more than one app is enabled; use \
                        SWITCHBOARD_PESTER_PORT, SWITCHBOARD_SESSION_PORT, SWITCHBOARD_ROOMS_PORT, \
                        SWITCHBOARD_PAIR_PORT or SWITCHBOARD_SIGNAL_PORT, or enable one app with --apps"
                        .into());
                }
            }
        }
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field.clone() { cfg.$field = v; } )* };
        }
        set!(
            threads,
            bind,
            admin_port,
            max_connections,
            max_connections_per_ip,
            max_header_bytes,
            max_headers,
            handshake_timeout_ms,
            ws_ping_interval_ms,
            ws_pong_timeout_ms,
            max_outbound_bytes,
            write_stall_timeout_ms,
            max_messages_per_sec,
            close_linger_ms,
            http_keep_alive_ms,
            read_buffer_bytes,
            pipe_high_water_bytes,
            allowed_origins,
            trusted_proxies,
            shutdown_grace_ms,
            log_format,
            log_level
        );
        if self.no_admin {
            cfg.admin_enabled = false;
        }
        self.app.apply(&mut cfg);
        self.signal.apply(&mut cfg);
        self.rooms.apply(&mut cfg);
        self.pester.apply(&mut cfg);
        cfg.validate()?;
        Ok((cfg, notes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Opts {
        let mut all = vec!["switchboard"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().opts
    }

    #[test]
    fn port_applies_to_a_single_app_only() {
        let c = opts(&["--apps", "pair"]).resolve(Some("5555")).unwrap();
        assert_eq!(c.pair.port, 5555);
        let mut two = opts(&[]);
        two.apps = Some(vec!["pair".into(), "signal".into()]);
        let err = two.resolve(Some("5555")).unwrap_err();
        assert!(err.contains("SWITCHBOARD_PAIR_PORT"), "{err}");
    }

    #[test]
    fn flags_win_over_file() {
        let dir = std::env::temp_dir().join(format!("sb-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "threads = 3\nmax_outbound_bytes = 10\n[pair]\nport = 4444\n",
        )
        .unwrap();
        let c = opts(&["--config", file.to_str().unwrap(), "--threads", "2"])
            .resolve(None)
            .unwrap();
        assert_eq!(
            (c.threads, c.max_outbound_bytes, c.pair.port),
            (2, 10, 4444)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn signal_flags_set_signal_limits() {
        let c = opts(&[
            "--signal-hold-timeout-secs",
            "5",
            "--signal-max-pipe-message-bytes",
            "1000",
        ])
        .resolve(None)
        .unwrap();
        assert_eq!(c.signal_limits.hold_timeout_secs, 5);
        assert_eq!(c.signal_limits.max_pipe_message_bytes, 1000);
    }

    #[test]
    fn ses_25_session_needs_a_secret_unless_left_out() {
        let (c, notes) = opts(&[]).resolve_noted(None).unwrap();
        assert!(!c.session.enabled && c.pair.enabled);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("JWT_SECRET"), "{notes:?}");
        let err = opts(&["--apps", "session"]).resolve(None).unwrap_err();
        assert!(err.contains("JWT_SECRET"), "{err}");
        let (c, notes) = opts(&["--jwt-secret", "0123456789abcdef"])
            .resolve_noted(None)
            .unwrap();
        assert!(c.session.enabled);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("16 bytes") && notes[0].contains("RFC 7518"));
        let (_, notes) = opts(&["--jwt-secret", &"k".repeat(32), "--apps", "session"])
            .resolve_noted(None)
            .unwrap();
        assert!(notes.is_empty());
        let c = opts(&[
            "--apps",
            "session",
            "--jwt-secret",
            &"k".repeat(32),
            "--session-check-host",
            "false",
            "--session-jwt-algorithms",
            "HS256,HS512",
        ])
        .resolve(Some("8001"))
        .unwrap();
        assert_eq!(c.session.port, 8001, "PORT when session runs alone");
        assert!(!c.session_settings.check_host);
        assert_eq!(c.session_settings.jwt_algorithms, ["HS256", "HS512"]);
        let err = opts(&[
            "--jwt-secret",
            &"k".repeat(32),
            "--session-jwt-algorithms",
            "none",
        ])
        .resolve(None)
        .unwrap_err();
        assert!(err.contains("\"none\""), "{err}");
    }

    #[test]
    fn pester_flags_set_pester_options() {
        let c = opts(&["--apps", "pester", "--pester-ping-interval-ms", "500"])
            .resolve(None)
            .unwrap();
        assert_eq!(c.pester_opts.ping_interval_ms, 500);
        let f: FileConfig = toml::from_str("[pester]\nport = 1\nmax_attachments = 3\n").unwrap();
        let mut c = Config::default();
        f.apply(&mut c);
        assert_eq!((c.pester.port, c.pester_opts.max_attachments), (1, 3));
    }

    #[test]
    fn unknown_app_is_named() {
        let o = opts(&["--apps", "pair,chat"]);
        assert!(o.resolve(None).unwrap_err().contains("\"chat\""));
    }
}
