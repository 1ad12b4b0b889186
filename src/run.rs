//! `metaflow-proxy` with no subcommand: start every part, serve until a signal, shut down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Map, Value};
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use metaflow_proxy::api::v2::{ApiTokens, NodeNormaliser, NodeValidator, V2State};
use metaflow_proxy::api::{ApiConnStats, ApiLimits};
use metaflow_proxy::app::directory::DirectoryMetaflows;
use metaflow_proxy::app::fdlimit;
use metaflow_proxy::app::registry::{ApiCalls, CallRegistry};
use metaflow_proxy::app::shell::{Control, Recordings, SipTask};
use metaflow_proxy::b2bua::B2bua;
use metaflow_proxy::cluster::{Cluster, ClusterSettings};
use metaflow_proxy::config::Config;
use metaflow_proxy::config::cli::Cli;
use metaflow_proxy::connlimit::{
    ConnectionBudget, FD_RESERVE, MIN_CONNECTION_BUDGET, connection_budget,
};
use metaflow_proxy::events::EventLog;
use metaflow_proxy::media::fastpath::FastPath;
use metaflow_proxy::media::{MediaConfig, MediaEngine};
use metaflow_proxy::metrics::Metrics;
use metaflow_proxy::modules;
use metaflow_proxy::modules::record::retention;
use metaflow_proxy::modules::record::stats::RecordingStats;
use metaflow_proxy::modules::record::uploader::{self, RetryPolicy, UploadWake};
use metaflow_proxy::sip::tcp::{TcpConfig, TcpTransport};

use metaflow_proxy::app::{notify, startup};
use metaflow_proxy::events::logging::LogLevel;

use crate::reload::Reloader;
use crate::settings;

/// Loads the configuration, sets up logging and runs the proxy until it is told to stop.
pub(crate) fn run(cli: &Cli) -> anyhow::Result<()> {
    let cfg = Config::load(cli)?;
    let log_level = metaflow_proxy::events::init_tracing(&cfg.log_level, cfg.log_format)
        .context("cannot set up logging")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(cfg, cli.clone(), log_level))
}

/// Module data checks for the API, relative to a node's `data`.
fn node_validator() -> NodeValidator {
    Arc::new(|module: &str, data: &Map<String, Value>| modules::validate_node_data(module, data))
}

fn node_normaliser() -> NodeNormaliser {
    Arc::new(|module: &str, data: &mut Map<String, Value>| {
        modules::normalise_node_data(module, data)
    })
}

/// Where the `/v2` API's token is, for the start-up line: the generated token's file (never the
/// token itself), or that the configured tokens apply.
fn api_token_note(tokens: &ApiTokens) -> String {
    match tokens.file() {
        Some(path) => path.display().to_string(),
        None => "none (api-auth-tokens configured)".to_owned(),
    }
}

/// Raises the open-file limit to the hard limit and returns how many accepted TCP connections
/// (SIP and API together) fit beside the RTP range; see docs/DECISIONS.md.
fn connection_budget_at_start(cfg: &Config) -> usize {
    let nofile = match fdlimit::raise_nofile() {
        Ok(limit) => {
            if limit.now > limit.before {
                tracing::info!(
                    from = limit.before,
                    to = limit.now,
                    "open-file limit raised to the hard limit"
                );
            }
            limit.now
        }
        Err(error) => {
            tracing::warn!(%error, "open-file limit unknown; assuming 1024");
            1024
        }
    };
    let budget = connection_budget(nofile, cfg.rtp_ports);
    let rtp = u64::from(cfg.rtp_ports.1 - cfg.rtp_ports.0) + 1;
    if nofile < rtp + FD_RESERVE + MIN_CONNECTION_BUDGET as u64 {
        tracing::warn!(
            nofile,
            rtp_ports = rtp,
            "open-file limit is too low for the RTP range plus a reserve: raise the hard limit \
             (LimitNOFILE=) or narrow rtp-ports"
        );
    }
    tracing::info!(
        nofile,
        budget,
        "accepted TCP connections (SIP and API together) are capped to keep fds for RTP"
    );
    budget
}

async fn serve(cfg: Config, cli: Cli, log_level: LogLevel) -> anyhow::Result<()> {
    let preflight = metaflow_proxy::app::startup::preflight(&cfg)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data-dir {}", cfg.data_dir.display()))?;
    let media_ip = cfg.media_ip_effective();
    let metaflows_file = preflight.metaflows;
    let metrics = Arc::new(Metrics::new());
    let (events, events_task) = EventLog::start(&cfg.data_dir)
        .with_context(|| format!("cannot open the event log in {}", cfg.data_dir.display()))?;
    metrics.add_source(events.stats());

    let (webhooks, webhook_tasks) =
        metaflow_proxy::webhooks::Webhooks::start(&cfg.webhook_settings(), Some(metrics.feature()));
    for url in &cfg.webhook_urls {
        tracing::info!(%url, "webhook receiver");
    }

    let (control_tx, control_rx) = mpsc::channel(64);
    let registry = CallRegistry::default();
    let live = Arc::new(ApiCalls {
        registry: registry.clone(),
        control: control_tx.clone(),
    });
    let tokens = ApiTokens::configured_or_generated(cfg.api_auth_tokens.clone(), &cfg.data_dir)?;
    let api_token_file = api_token_note(&tokens);
    let store = open_store(&cfg)?;
    let (v2, directory) = V2State::with_store(
        store,
        &cfg.data_dir,
        tokens,
        live,
        node_validator(),
        node_normaliser(),
        metaflow_proxy::api::v2::DEFAULT_ACCOUNT_ID,
    )
    .with_context(|| format!("cannot open the store ({})", cfg.store.display()))?;
    // `POST /v2/system/reload` asks the signal loop below, which runs the SIGHUP reload.
    let (reload_tx, mut reload_rx) = mpsc::channel(4);
    v2.serve_reloads(reload_tx);
    let store = v2.store();
    metrics.add_source(store.health());
    metrics.add_source(v2.sessions());
    tokio::spawn(recover_store(Arc::clone(&store)));
    let synced = startup::sync_metaflows_file(&v2, &cfg.data_dir, metaflows_file.as_ref())
        .map_err(anyhow::Error::msg)?;
    if synced != startup::MetaflowsSync::Untouched {
        tracing::info!(outcome = ?synced, "metaflows file");
    }

    let sip_socket = UdpSocket::bind(cfg.sip_listen)
        .await
        .with_context(|| format!("cannot bind sip-listen {}", cfg.sip_listen))?;
    if let Err(err) = metaflow_proxy::app::icmp::enable(&sip_socket) {
        // Not fatal: a dead PBX is then noticed by Timer B/F, as before.
        tracing::warn!(error = %err, "ICMP errors on the SIP socket cannot be enabled");
    }
    let local = sip_socket.local_addr()?;
    let budget = ConnectionBudget::new(connection_budget_at_start(&cfg));
    let tcp_config = TcpConfig {
        idle_timeout: cfg.tcp_idle_timeout,
        first_byte_timeout: cfg.tcp_first_byte_timeout,
        header_timeout: cfg.tcp_header_timeout,
        max_per_source: cfg.tcp_max_per_source,
        ..TcpConfig::default()
    };
    let (tcp, tcp_inbound) = TcpTransport::bind_with_budget(local, tcp_config, budget.clone())
        .await
        .with_context(|| format!("cannot listen for SIP over TCP on {local} (sip-listen)"))?;
    metrics.add_source(tcp.metrics_source());
    let (media_tx, media_rx) = mpsc::channel(4096);
    let media = MediaEngine::new(
        MediaConfig {
            media_ip,
            port_min: cfg.rtp_ports.0,
            port_max: cfg.rtp_ports.1,
            media_timeout: cfg.media_timeout,
            media_timeout_hold: cfg.media_timeout_hold,
            workers: cfg.media_workers,
            latch: cfg.latch_policy(),
        },
        media_tx,
        Some(metaflow_proxy::media::inspect::DtmfInspector::factory()),
    )
    .context("cannot start the media engine (rtp-ports)")?;
    let mut media = media;
    if let Some(fastpath) = FastPath::start(cfg.media_fastpath, media_ip)
        .context("media-fastpath = kernel: the kernel fast path cannot be set up")?
    {
        let fastpath = std::sync::Arc::new(fastpath);
        media.set_fastpath(std::sync::Arc::clone(&fastpath));
        // Interfaces brought up later (a VLAN, a container's veth) get the program too.
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FASTPATH_INTERFACE_SCAN);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                fastpath.attach_new_interfaces();
            }
        });
    }
    metrics.add_source(media.stats());
    let mut core = B2bua::new(
        settings::core_config(&cfg, local, cfg.media_ip_advertised()),
        metrics.clone(),
        Box::new(media),
    );
    directory.set_system(settings::metaflow_system(&cfg));
    core.set_resolver(Box::new(DirectoryMetaflows(directory)));
    metrics.add_source(core.stats());

    let api_listener = TcpListener::bind(cfg.api_listen)
        .await
        .with_context(|| format!("cannot bind api-listen {}", cfg.api_listen))?;
    let api_addr = api_listener.local_addr()?;
    if let Some(settings) = ClusterSettings::from_config(&cfg, local, api_addr) {
        let cluster = Cluster::start(settings, Arc::new(registry.clone()));
        match cluster.load_bindings(KEPT_BINDINGS_WAIT).await {
            Ok(kept) => {
                let restored = core.restore_bindings(kept, Instant::now());
                tracing::info!(restored, "registrations kept from the last run");
            }
            Err(error) => {
                let error = metaflow_proxy::base::ErrorChain(&error);
                tracing::warn!(%error, "registrations of the last run not restored");
            }
        }
        core.set_binding_sink(Box::new(cluster.registration_writer()));
        v2.serve_cluster(cluster);
    }
    let ready = Arc::new(AtomicBool::new(false));
    let router = metaflow_proxy::api::router(metaflow_proxy::api::ApiState {
        ready: ready.clone(),
        metrics: metrics.clone(),
        store: Some(store.health()),
    })
    .merge(metaflow_proxy::api::v2::routes(v2.clone()));
    let router = metaflow_proxy::api::with_request_metrics(router, metrics.clone());
    let (api_stop_tx, api_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api_stats = Arc::new(ApiConnStats::default());
    metrics.add_source(api_stats.clone());
    let api_limits = ApiLimits {
        header_timeout: cfg.api_header_timeout,
        idle_timeout: cfg.api_idle_timeout,
        max_per_source: cfg.api_max_per_source,
    };
    let api_task = tokio::spawn(metaflow_proxy::api::serve_with_limits(
        api_listener,
        router,
        async {
            let _ = api_stop_rx.await;
        },
        api_limits,
        budget,
        api_stats,
    ));

    let recording_stats = Arc::new(RecordingStats::default());
    metrics.add_source(recording_stats.clone());
    retention::spawn(
        cfg.data_dir.clone(),
        cfg.recordings_retention_days,
        recording_stats.clone(),
    );
    let upload_wake = UploadWake::default();
    uploader::spawn(
        cfg.data_dir.clone(),
        recording_stats.clone(),
        upload_wake.clone(),
        RetryPolicy::default(),
    );
    let sip_task = tokio::spawn(
        SipTask {
            socket: Arc::new(sip_socket),
            tcp,
            tcp_inbound,
            core,
            media_events: media_rx,
            control: control_rx,
            events: events.clone(),
            registry,
            recordings: Recordings::new(
                cfg.data_dir.clone(),
                recording_stats.clone(),
                upload_wake.clone(),
            ),
            call_metrics: metaflow_proxy::metrics::CallEventMetrics::new(metrics.feature()),
            webhooks,
            sounds: metaflow_proxy::app::sounds::Sounds::new(
                metaflow_proxy::audio::SoundLibrary::with_data_dir(cfg.data_dir.clone()),
            ),
        }
        .run(),
    );
    ready.store(true, Ordering::SeqCst);
    notify::ready(&format!("serving SIP on {local}, API on {api_addr}"));
    if let Some(interval) = notify::watchdog_interval() {
        tracing::info!(?interval, "systemd watchdog enabled");
        notify::spawn_watchdog(interval, control_tx.clone());
    }
    let rtp_ports = format!("{}-{}", cfg.rtp_ports.0, cfg.rtp_ports.1);
    let data_dir = cfg.data_dir.display();
    match cfg.upstream {
        Some(up) => {
            tracing::info!(sip = %local, api = %api_addr, upstream = %up, media_ip = %media_ip, rtp_ports, %data_dir, api_token_file, "metaflow-proxy ready");
            if cfg.upstream_transport == metaflow_proxy::sip::transport::Transport::Tcp
                && cfg.pbx_addresses.is_empty()
            {
                tracing::warn!(upstream = %up, "upstream-transport is tcp and pbx-addresses is empty: a call the PBX places over a TCP connection of its own comes from another port and is not recognised as the PBX's; list the PBX's host in pbx-addresses");
            }
        }
        None => {
            tracing::warn!(sip = %local, api = %api_addr, media_ip = %media_ip, rtp_ports, %data_dir, api_token_file, "metaflow-proxy ready without --upstream: new calls get 503")
        }
    }

    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut reloader = Reloader {
        cli,
        current: cfg,
        log_level,
        v2,
        control: control_tx.clone(),
        events: events.clone(),
        local,
    };
    loop {
        tokio::select! {
            _ = sighup.recv() => {
                notify::reloading();
                reloader.reload("SIGHUP").await;
                notify::reloaded();
            }
            Some(reply) = reload_rx.recv() => {
                notify::reloading();
                let outcome = reloader.reload("API reload").await;
                notify::reloaded();
                // The client may have gone away meanwhile; the reload is done either way.
                let _ = reply.send(outcome);
            }
            _ = sigterm.recv() => {
                let grace = reloader.current.shutdown_grace;
                tracing::info!(grace_s = grace.as_secs(), "SIGTERM: draining calls");
                notify::stopping("draining calls");
                ready.store(false, Ordering::SeqCst);
                let _ = control_tx.send(Control::BeginShutdown).await;
                let deadline = Instant::now() + grace;
                while metrics.active_calls() > 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = control_tx.send(Control::TerminateAll).await;
                // Give the BYEs a moment on the wire before the socket closes.
                tokio::time::sleep(Duration::from_millis(300)).await;
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("SIGINT: exiting now");
                events.flush_and_close().await;
                return Ok(());
            }
        }
    }
    let _ = control_tx.send(Control::Stop).await;
    let _ = sip_task.await;
    let _ = api_stop_tx.send(());
    let _ = api_task.await;
    // The SIP task dropped the webhook queues: give the senders a moment to deliver what is left.
    let webhooks_done = futures_join_all(webhook_tasks);
    if tokio::time::timeout(WEBHOOK_DRAIN, webhooks_done)
        .await
        .is_err()
    {
        tracing::warn!("webhook events still queued at exit were not delivered");
    }
    events.flush_and_close().await;
    let _ = events_task.await;
    tracing::info!("metaflow-proxy stopped");
    Ok(())
}

/// How long start-up waits for the cluster database to read back the registrations relayed
/// before a restart; without it they come back with the phones' next refresh.
const KEPT_BINDINGS_WAIT: Duration = Duration::from_secs(5);

/// How often the kernel fast path looks for interfaces that appeared since start: a listing
/// of /sys/class/net, so a new interface carries kernel-forwarded media within seconds.
const FASTPATH_INTERFACE_SCAN: Duration = Duration::from_secs(5);

/// How long shutdown waits for the webhook senders to deliver their queues.
const WEBHOOK_DRAIN: Duration = Duration::from_secs(3);

/// Waits for every task in turn (each runs on its own meanwhile).
async fn futures_join_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

/// How long start-up waits for PostgreSQL (key `store`) before giving up.
const POSTGRES_START_WAIT: Duration = Duration::from_secs(15);

/// Opens the store `store` names: the embedded file in `data-dir`, or PostgreSQL (waiting for
/// it a while at start-up, so that proxies and database may start together).
fn open_store(cfg: &Config) -> anyhow::Result<Arc<metaflow_proxy::store::Store>> {
    use metaflow_proxy::config::StoreLocation;
    use metaflow_proxy::store::Store;
    let store = match &cfg.store {
        StoreLocation::Redb => Store::open_in(&cfg.data_dir)
            .with_context(|| format!("cannot open the store in {}", cfg.data_dir.display()))?,
        StoreLocation::Postgres(url) => {
            std::fs::create_dir_all(&cfg.data_dir).with_context(|| {
                format!("cannot create data directory {}", cfg.data_dir.display())
            })?;
            // Connecting waits on a thread of its own; keep this runtime's worker free.
            let url = url.clone();
            tokio::task::block_in_place(|| Store::open_postgres(&url, POSTGRES_START_WAIT))?
        }
    };
    tracing::info!(store = %cfg.store.display(), "store open");
    Ok(Arc::new(store))
}

/// How often a store that could not write checks whether it can again.
const STORE_RECOVERY_INTERVAL: Duration = Duration::from_secs(2);

/// Reopens the store after a failed write once the data directory takes writes again, so that
/// `/ready` turns 200 without waiting for the next API write.
async fn recover_store(store: Arc<metaflow_proxy::store::Store>) {
    let mut tick = tokio::time::interval(STORE_RECOVERY_INTERVAL);
    loop {
        tick.tick().await;
        if store.health().problem().is_some() {
            let store = Arc::clone(&store);
            let _ = tokio::task::spawn_blocking(move || store.recover()).await;
        }
    }
}
