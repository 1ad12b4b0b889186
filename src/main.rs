//! The `metaflow-proxy` binary: parses the command line, then runs the proxy, checks a config
//! file, or analyses a capture. This is the only place `anyhow` is used.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use metaflow_proxy::b2bua::shell::{Control, SipTask};
use metaflow_proxy::b2bua::{B2bua, CoreConfig, StaticMetaflows};
use metaflow_proxy::cli::{Cli, Command};
use metaflow_proxy::config::Config;
use metaflow_proxy::events::EventLog;
use metaflow_proxy::media::{MediaConfig, MediaEngine};
use metaflow_proxy::metrics::Metrics;
use metaflow_proxy::sip::transaction::Timers;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::CheckConfig { config }) => check_config(config),
        Some(Command::Analyze { .. }) => analyze(&cli),
        None => run(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("metaflow-proxy: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> anyhow::Result<()> {
    let summary = metaflow_proxy::config::check_config(path)?;
    println!("{summary}");
    Ok(())
}

fn analyze(cli: &Cli) -> anyhow::Result<()> {
    use metaflow_proxy::capture::{self, AnalyzeOptions, replay};
    let Some(Command::Analyze {
        capture: path,
        metaflows,
        json,
        event_pt,
    }) = &cli.command
    else {
        bail!("analyze: no capture given");
    };
    let bytes = capture::read_capture_file(path)
        .with_context(|| format!("cannot read capture {}", path.display()))?;
    let opts = AnalyzeOptions {
        event_pt: event_pt.as_ref().map(|e| (e.payload_type, e.clock_rate)),
    };
    let report = capture::analyze(&bytes, &opts)
        .with_context(|| format!("cannot analyse {}", path.display()))?;
    let decisions = match metaflows {
        Some(file) => {
            let flows =
                metaflow_proxy::modules::load_metaflows_file(file).map_err(anyhow::Error::msg)?;
            replay::replay(&report, &Arc::new(flows))
        }
        None => Vec::new(),
    };
    if *json {
        print!("{}", report.render_json_lines());
        for d in &decisions {
            println!("{}", replay::decision_json(d));
        }
    } else {
        print!("{}", report.render_text());
        if metaflows.is_some() {
            println!("metaflow decisions:");
            if decisions.is_empty() {
                println!("  none (no binding digit was dialed)");
            }
            for d in &decisions {
                println!("  {}", replay::decision_text(d));
            }
        }
    }
    Ok(())
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let cfg = Config::load(cli)?;
    metaflow_proxy::events::init_tracing(&cfg.log_level, cfg.log_format)
        .context("cannot set up logging")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(cfg))
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data-dir {}", cfg.data_dir.display()))?;
    let media_ip = cfg.media_ip_effective();
    let metaflows = match &cfg.metaflows {
        Some(path) => Some(Arc::new(
            metaflow_proxy::modules::load_metaflows_file(path).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let (events, events_task) = EventLog::start(&cfg.data_dir)
        .with_context(|| format!("cannot open the event log in {}", cfg.data_dir.display()))?;

    let sip_socket = UdpSocket::bind(cfg.sip_listen)
        .await
        .with_context(|| format!("cannot bind sip-listen {}", cfg.sip_listen))?;
    let local = sip_socket.local_addr()?;
    let (media_tx, media_rx) = mpsc::channel(4096);
    let media = MediaEngine::new(
        MediaConfig {
            media_ip,
            port_min: cfg.rtp_ports.0,
            port_max: cfg.rtp_ports.1,
            media_timeout: cfg.media_timeout,
        },
        media_tx,
        None,
    )
    .context("cannot start the media engine (rtp-ports)")?;
    metrics.add_source(media.stats());
    metrics.add_source(events.stats());
    let mut core = B2bua::new(
        CoreConfig {
            local,
            upstream: cfg.upstream,
            media_ip,
            timers: Timers {
                t1: cfg.sip_t1,
                t2: cfg.sip_t2,
                t4: cfg.sip_t4,
            },
            max_calls: cfg.max_calls,
        },
        metrics.clone(),
    );
    core.set_resolver(Box::new(StaticMetaflows(metaflows)));
    let api_listener = TcpListener::bind(cfg.api_listen)
        .await
        .with_context(|| format!("cannot bind api-listen {}", cfg.api_listen))?;
    let api_addr = api_listener.local_addr()?;
    let ready = Arc::new(AtomicBool::new(false));
    let router = metaflow_proxy::api::router(metaflow_proxy::api::ApiState {
        ready: ready.clone(),
        metrics: metrics.clone(),
    });
    let (api_stop_tx, api_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api_task = tokio::spawn(metaflow_proxy::api::serve(api_listener, router, async {
        let _ = api_stop_rx.await;
    }));

    let (control_tx, control_rx) = mpsc::channel(4);
    let sip_task = tokio::spawn(
        SipTask {
            socket: Arc::new(sip_socket),
            core,
            media,
            media_events: media_rx,
            control: control_rx,
            events: events.clone(),
        }
        .run(),
    );
    ready.store(true, Ordering::SeqCst);
    match cfg.upstream {
        Some(up) => {
            tracing::info!(sip = %local, api = %api_addr, upstream = %up, media_ip = %media_ip, "metaflow-proxy ready")
        }
        None => {
            tracing::warn!(sip = %local, api = %api_addr, "metaflow-proxy ready without --upstream: new calls get 503")
        }
    }

    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        _ = sigterm.recv() => {
            tracing::info!(grace_s = cfg.shutdown_grace.as_secs(), "SIGTERM: draining calls");
            ready.store(false, Ordering::SeqCst);
            let _ = control_tx.send(Control::BeginShutdown).await;
            let deadline = Instant::now() + cfg.shutdown_grace;
            while metrics.active_calls() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = control_tx.send(Control::TerminateAll).await;
            // Give the BYEs a moment on the wire before the socket closes.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("SIGINT: exiting now");
            events.flush_and_close().await;
            return Ok(());
        }
    }
    drop(control_tx);
    let _ = sip_task.await;
    let _ = api_stop_tx.send(());
    let _ = api_task.await;
    drop(events);
    let _ = events_task.await;
    tracing::info!("metaflow-proxy stopped");
    Ok(())
}
