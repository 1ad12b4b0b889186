//! The DTMF phase after the media phase: every established call presses `*0` on its caller
//! stream, and the time from the packet that completes the code to the proxy's action (its BYE
//! at the caller, or its REFER at the PBX side) is measured per call.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::args::DtmfAction;
use crate::dtmf::{PressTarget, press_star_zero};
use crate::error::LoadError;
use crate::report::DtmfOutcome;
use crate::rtp::SendStream;
use crate::tally::{Direction, Path};
use crate::uac::{CallState, Uac};
use crate::uas::UasShared;

/// How long after the last DTMF press the caller side waits for outstanding BYEs.
const BYE_WAIT: Duration = Duration::from_secs(3);

/// Presses `*0` on every call still up; returns one outcome per measured span (the action's
/// message first, then, for a transfer, the BYE that follows the NOTIFY).
pub(crate) fn run(
    action: DtmfAction,
    rate: u32,
    streams: &[SendStream],
    uac: &mut Uac,
    uas: &UasShared,
) -> Result<Vec<DtmfOutcome>, LoadError> {
    let targets = press_targets(streams, uac)?;
    eprintln!("[dtmf] pressing *0 on {} calls", targets.len());
    let start = Instant::now() + Duration::from_millis(100);
    let presser = std::thread::Builder::new()
        .name("dtmf".into())
        .spawn(move || {
            let completed = press_star_zero(&targets, rate, start);
            let calls: Vec<u32> = targets.iter().map(|t| t.call).collect();
            (calls, completed)
        })?;
    while !presser.is_finished() {
        uac.poll(Instant::now() + Duration::from_millis(100));
    }
    let (calls, completed) = presser
        .join()
        .map_err(|_| std::io::Error::other("the DTMF sender thread panicked"))?;
    let waiting_since = Instant::now();
    let bye_missing = |uac: &Uac| {
        calls
            .iter()
            .filter(|&&c| {
                uac.calls
                    .get(c as usize)
                    .is_some_and(|x| x.bye_received.is_none())
            })
            .count()
    };
    while bye_missing(uac) > 0 && waiting_since.elapsed() < BYE_WAIT {
        uac.poll(Instant::now() + Duration::from_millis(50));
    }
    let byes: Vec<Option<Instant>> = calls
        .iter()
        .map(|&c| uac.calls.get(c as usize).and_then(|x| x.bye_received))
        .collect();
    let bye_outcome = outcome("`*0` to BYE at the caller", "BYE", &completed, &byes);
    match action {
        DtmfAction::Hangup => Ok(vec![bye_outcome]),
        DtmfAction::Transfer => {
            let refers = arrivals(&uas.refer_received, &calls);
            let refer_outcome = outcome(
                "`*0` to REFER at the PBX side",
                "REFER",
                &completed,
                &refers,
            );
            let unanswered = uas.unanswered_notifies.load(Ordering::Relaxed);
            if unanswered > 0 {
                eprintln!("[dtmf] {unanswered} NOTIFYs got no final response");
            }
            let placed = arrivals(&uas.placed_received, &calls);
            if placed.iter().all(Option::is_none) {
                return Ok(vec![refer_outcome, bye_outcome]);
            }
            let placed_outcome = outcome(
                "`*0` to the proxy's INVITE for the target at the PBX side",
                "INVITE",
                &completed,
                &placed,
            );
            Ok(vec![refer_outcome, placed_outcome, bye_outcome])
        }
    }
}

/// When each of `calls` saw its message arrive, from per-call-index `times` (`None`: never).
fn arrivals(times: &std::sync::Mutex<Vec<Option<Instant>>>, calls: &[u32]) -> Vec<Option<Instant>> {
    let times = times.lock().map(|t| t.clone()).unwrap_or_default();
    calls
        .iter()
        .map(|&c| times.get(c as usize).copied().flatten())
        .collect()
}

/// Presses `*0` on every call still up (the proxy's `0` holds the call) and gives the proxy a
/// second to start its music.
pub(crate) fn hold_all(rate: u32, streams: &[SendStream], uac: &mut Uac) -> Result<(), LoadError> {
    let targets = press_targets(streams, uac)?;
    eprintln!("[hold] pressing *0 on {} calls", targets.len());
    let start = Instant::now() + Duration::from_millis(100);
    let presser = std::thread::Builder::new()
        .name("dtmf".into())
        .spawn(move || press_star_zero(&targets, rate, start))?;
    while !presser.is_finished() {
        uac.poll(Instant::now() + Duration::from_millis(100));
    }
    presser
        .join()
        .map_err(|_| std::io::Error::other("the DTMF sender thread panicked"))?;
    uac.poll(Instant::now() + Duration::from_secs(1));
    Ok(())
}

/// The caller streams of the calls still established, ready to carry the presses.
fn press_targets(streams: &[SendStream], uac: &Uac) -> Result<Vec<PressTarget>, LoadError> {
    let mut targets = Vec::new();
    for stream in streams {
        let is_caller = stream.path == Path::Proxied && stream.direction == Direction::AToB;
        let Some(call) = stream.call.filter(|_| is_caller) else {
            continue;
        };
        let up = uac.calls.get(call as usize).map(|c| &c.state) == Some(&CallState::Established);
        if up {
            targets.push(PressTarget {
                call,
                socket: stream.socket.try_clone()?,
                dest: stream.dest,
                ssrc: stream.id,
                rtp_seq: stream.rtp_seq,
                rtp_timestamp: stream.rtp_timestamp,
            });
        }
    }
    Ok(targets)
}

/// Latencies from each code-completing send to the matching arrival.
fn outcome(
    label: &'static str,
    awaited: &'static str,
    sent: &[Option<Instant>],
    arrived: &[Option<Instant>],
) -> DtmfOutcome {
    let mut result = DtmfOutcome {
        label,
        awaited,
        latencies: Vec::new(),
        missing: 0,
        early: 0,
    };
    for (sent, arrived) in sent.iter().zip(arrived) {
        match (sent, arrived) {
            (Some(sent), Some(at)) if at >= sent => result.latencies.push(*at - *sent),
            (_, Some(_)) => result.early += 1,
            (_, None) => result.missing += 1,
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_separates_measured_early_and_missing() {
        let base = Instant::now();
        let sent = [
            Some(base),
            Some(base + Duration::from_millis(5)),
            Some(base),
            None,
        ];
        let arrived = [
            Some(base + Duration::from_millis(2)),
            Some(base + Duration::from_millis(1)),
            None,
            Some(base),
        ];
        let result = outcome("x", "REFER", &sent, &arrived);
        assert_eq!(result.latencies, vec![Duration::from_millis(2)]);
        assert_eq!(result.early, 2);
        assert_eq!(result.missing, 1);
    }
}
