//! `mfp-propagation`: how long a configuration change written through one proxy of a cluster
//! takes to be seen by the others.
//!
//! It writes the default account's metaflows through the writer's API, `COUNT` times, each time
//! with a new exact number so every write has a new revision, and polls each reader's API until
//! it returns that revision. The time from the writer's acknowledgement to each reader's first
//! answer with the new revision is the propagation latency; the tool prints p50, p99 and the
//! maximum per reader. The readers' copies are in memory and follow PostgreSQL's notifications,
//! so this also bounds when a reader's next call uses the change (its metaflow directory is
//! rebuilt right after its copy is updated). Plain HTTP/1.1 over loopback, one request per
//! connection: each poll costs about a tenth of a millisecond, which is the figure's resolution.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

/// What to measure.
#[derive(Debug, Parser)]
#[command(
    name = "mfp-propagation",
    about = "Writes metaflows through one proxy's API and times how long each other proxy takes \
to return the new revision (p50/p99/max)."
)]
struct Args {
    /// API address of the proxy the writes go through.
    #[arg(long, value_name = "ADDR:PORT")]
    write: SocketAddr,

    /// API address of a proxy that must see the writes; repeat for several.
    #[arg(long = "read", value_name = "ADDR:PORT", required = true)]
    read: Vec<SocketAddr>,

    /// The X-Auth-Token the proxies accept (one shared api-auth-tokens value).
    #[arg(long, value_name = "TOKEN")]
    token: String,

    /// Writes to make.
    #[arg(long, default_value_t = 200)]
    count: usize,

    /// Account whose metaflows are written.
    #[arg(long, default_value = "default")]
    account: String,

    /// Give up on one write after this many milliseconds.
    #[arg(long, default_value_t = 5000)]
    limit_ms: u64,
}

/// One HTTP exchange: status and parsed JSON body.
fn request(
    to: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2))
        .map_err(|e| format!("{to}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {to}\r\nX-Auth-Token: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("{to}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("{to}: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{to}: no HTTP status in the answer"))?;
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    Ok((status, json))
}

/// The value at `fraction` (0..=1) of sorted `values`.
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn run(args: &Args) -> Result<(), String> {
    let path = format!("/v2/accounts/{}/metaflows", args.account);
    let limit = Duration::from_millis(args.limit_ms);
    let mut seen: Vec<Vec<Duration>> = vec![Vec::with_capacity(args.count); args.read.len()];
    for round in 0..args.count {
        let doc = json!({"data": {"binding_digit": "*", "numbers": {
            format!("9{round}"): {"module": "hangup"}
        }}});
        let (status, reply) = request(args.write, "POST", &path, &args.token, Some(&doc))?;
        let acknowledged = Instant::now();
        if !(200..300).contains(&status) {
            return Err(format!("write {round}: {status} {reply}"));
        }
        let revision = reply["revision"].as_str().unwrap_or_default().to_owned();
        // Readers are polled in turn, so each one's time is not delayed by the others'.
        let mut pending: Vec<usize> = (0..args.read.len()).collect();
        while !pending.is_empty() {
            let mut still = Vec::with_capacity(pending.len());
            for index in pending {
                let reader = args.read[index];
                let (_, answer) = request(reader, "GET", &path, &args.token, None)?;
                if answer["revision"].as_str() == Some(revision.as_str()) {
                    seen[index].push(acknowledged.elapsed());
                } else if acknowledged.elapsed() > limit {
                    return Err(format!(
                        "write {round}: {reader} did not show revision {revision} within {limit:?}"
                    ));
                } else {
                    still.push(index);
                }
            }
            pending = still;
        }
    }
    println!("writes through {}: {}", args.write, args.count);
    let mut all = Vec::new();
    for (reader, times) in args.read.iter().zip(seen.iter_mut()) {
        times.sort();
        println!(
            "seen on {reader}: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.99)),
            ms(percentile(times, 1.0))
        );
        all.extend_from_slice(times);
    }
    all.sort();
    println!(
        "all readers: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(percentile(&all, 1.0))
    );
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mfp-propagation: {error}");
            ExitCode::FAILURE
        }
    }
}
