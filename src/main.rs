//! The `metaflow-proxy` binary: parses the command line, then runs the proxy, checks a config
//! file, analyses a capture, replays one through a running proxy, or controls a running proxy
//! (`ctl`). This is the only place `anyhow` is used.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;

use metaflow_proxy::config::cli::{Cli, Command};

mod reload;
mod run;
mod settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::CheckConfig { config }) => check_config(config),
        Some(Command::Analyze { .. }) => analyze(&cli),
        Some(Command::Replay { .. }) => return replay(&cli),
        Some(Command::Ctl(args)) => ctl(args),
        None => run::run(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("metaflow-proxy: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `replay`: one capture (optionally checked against `--expect`) or a corpus folder. Exit 0
/// when everything expected was seen, 1 with one line per unmet field otherwise.
fn replay(cli: &Cli) -> ExitCode {
    match replay_inner(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("metaflow-proxy: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn replay_inner(cli: &Cli) -> anyhow::Result<bool> {
    use metaflow_proxy::replay::{self, ReplayOptions};
    let Some(Command::Replay {
        capture,
        proxy,
        pbx_listen,
        speed,
        events,
        webhook_listen,
        expect,
        linger_ms,
    }) = &cli.command
    else {
        bail!("replay: no capture given");
    };
    let opts = ReplayOptions {
        proxy: *proxy,
        pbx_listen: *pbx_listen,
        speed: *speed,
        events: events.clone(),
        webhook_listen: *webhook_listen,
        linger: std::time::Duration::from_millis(*linger_ms),
    };
    if let Some(path) = events
        && !path.exists()
    {
        eprintln!(
            "metaflow-proxy: warning: {} does not exist (yet); digits and modules are seen only \
             once the proxy writes it",
            path.display()
        );
    }
    if capture.is_dir() {
        if expect.is_some() {
            bail!("--expect applies to one capture; a folder uses its NAME.expect.toml files");
        }
        let rows = replay::run_corpus(capture, &opts)?;
        if rows.is_empty() {
            bail!(
                "{}: no NAME.pcap with a NAME.expect.toml beside it",
                capture.display()
            );
        }
        print!("{}", replay::render_table(&rows));
        return Ok(rows.iter().all(|r| r.passed));
    }
    let expected = expect
        .as_deref()
        .map(replay::load_expectation)
        .transpose()?;
    // Every error names the capture, or is about the proxy (setup), not the file.
    let seen = replay::replay_file(capture, &opts)?;
    print!("{seen}");
    let Some(expected) = expected else {
        return Ok(true);
    };
    let misses = replay::diff(&expected, &seen);
    if misses.is_empty() {
        println!("expectation met");
        return Ok(true);
    }
    println!("expectation NOT met:");
    for miss in &misses {
        println!("  {miss}");
    }
    Ok(false)
}

/// `ctl`: one action against a running proxy's API; its errors already say what to do.
fn ctl(args: &metaflow_proxy::ctl::CtlArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    metaflow_proxy::ctl::run(args, &mut out)?;
    Ok(())
}

/// Validates what start-up validates, through the same functions: the file's keys, then the
/// checks that need no socket (the metaflows file, the data directory).
fn check_config(path: &std::path::Path) -> anyhow::Result<()> {
    let config = metaflow_proxy::config::Config::from_file(path)?;
    metaflow_proxy::app::startup::preflight(&config)?;
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
                metaflow_proxy::metaflow::load_metaflows_file(file).map_err(anyhow::Error::msg)?;
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
