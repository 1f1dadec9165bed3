//! The `switchboard` binary: resolve the configuration, start the reactors, wait for
//! SIGTERM or SIGINT, drain, exit 0. A second signal exits at once.

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use switchboard::cli::{Cli, Command, Opts, TokenArgs};
use switchboard::config::{Config, LogFormat};
use switchboard::server::{Server, raise_fd_limit};

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let port_env = std::env::var("PORT").ok();
    if let Some(Command::Token(args)) = &cli.command {
        return token(&cli.opts, args, port_env.as_deref());
    }
    let (config, notes) = match cli.opts.resolve_noted(port_env.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchboard: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.opts.check_config || matches!(cli.command, Some(Command::CheckConfig)) {
        for note in &notes {
            eprintln!("switchboard: warning: {note}");
        }
        println!("configuration ok: {config:#?}");
        return ExitCode::SUCCESS;
    }
    init_logging(&config);
    for note in &notes {
        tracing::warn!("{note}");
    }
    raise_fd_limit();
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "switchboard stopped");
            eprintln!("switchboard: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `switchboard token`: a development token on stdout, the URL to use on stderr.
fn token(opts: &Opts, args: &TokenArgs, port_env: Option<&str>) -> ExitCode {
    let config = match opts.resolve(port_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchboard token: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(secret) = &config.session_settings.jwt_secret else {
        eprintln!("switchboard token: no secret: set JWT_SECRET (or session.jwt_secret)");
        return ExitCode::from(2);
    };
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| format!("localhost:{}", config.session.port));
    let now = switchboard::apps::session::unix_now();
    let token = switchboard::apps::session::jwt::mint(
        &args.user,
        &args.room,
        &host,
        now,
        args.ttl,
        secret.bytes(),
    );
    println!("{token}");
    eprintln!("ws://{host}/?token={token}");
    ExitCode::SUCCESS
}

fn serve(config: Config) -> std::io::Result<()> {
    let mut poll = mio::Poll::new()?;
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    poll.registry()
        .register(&mut signals, mio::Token(0), mio::Interest::READABLE)?;
    let threads = config.reactor_count();
    let server = Server::start(config)?;
    let mut line = String::from("switchboard listening");
    for (name, addr) in server.addrs() {
        tracing::info!(service = name, %addr, "listening");
        line.push_str(&format!(" {name}={addr}"));
    }
    tracing::info!(threads, "reactors started");
    // One machine-readable line on stdout, for scripts and tests that bind port 0.
    println!("{line}");
    let _ = std::io::stdout().flush();

    let mut events = mio::Events::with_capacity(8);
    let mut draining = false;
    while !server.is_finished() {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(50)))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        for signal in signals.pending() {
            if draining {
                tracing::warn!(signal, "second signal: exiting at once");
                std::process::exit(128 + signal);
            }
            tracing::info!(signal, "draining");
            draining = true;
            server.shutdown();
        }
    }
    server.join()?;
    tracing::info!("stopped");
    Ok(())
}
