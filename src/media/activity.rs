//! Media-timeout bookkeeping shared by the relays of one call's streams.
//!
//! Relay tasks note RTP and RTCP activity locally and publish it here on their periodic tick,
//! so the per-packet path stays free of shared writes. Whichever stream's tick first sees the
//! whole call idle for longer than its timeout claims the single timeout report.
//!
//! A call on hold sends no RTP by design (RFC 3264 §8.4), so while every stream of it is held
//! the separate, longer on-hold timeout applies instead of the normal one (rtpengine's
//! `silent-timeout` next to its `timeout`). RTCP counts as activity in both cases: a held
//! phone keeps sending receiver reports, which is the sign that it is still there.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The two silence limits of a call, in milliseconds; zero disables a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limits {
    /// Silence allowed while media is expected to flow (`media-timeout`).
    pub normal_ms: u64,
    /// Silence allowed while every stream of the call is on hold (`media-timeout-hold`).
    pub hold_ms: u64,
}

/// Timeout state of one call: whether the timeout counts yet, whether the call is on hold,
/// when RTP or RTCP was last seen on any of its streams, and whether the timeout was already
/// reported.
#[derive(Debug, Default)]
pub(super) struct CallActivity {
    armed: AtomicBool,
    held: AtomicBool,
    last_packet_ms: AtomicU64,
    reported: AtomicBool,
}

impl CallActivity {
    /// Starts counting silence from `now_ms` (the call was confirmed); re-arming after a report
    /// allows one more report.
    pub(super) fn arm(&self, now_ms: u64) {
        self.last_packet_ms.fetch_max(now_ms, Ordering::Relaxed);
        self.reported.store(false, Ordering::Relaxed);
        self.armed.store(true, Ordering::Release);
    }

    /// Records that one of the call's streams received RTP or RTCP at (or shortly before)
    /// `now_ms`.
    pub(super) fn note_packet(&self, now_ms: u64) {
        self.last_packet_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Puts the call on hold or takes it off at `now_ms`. A change restarts the silence count:
    /// the re-INVITE that made it is itself a sign of life, and a call taken off hold after a
    /// long quiet spell must get the whole normal timeout for its media to resume.
    pub(super) fn set_held(&self, held: bool, now_ms: u64) {
        if self.held.swap(held, Ordering::Relaxed) != held {
            self.last_packet_ms.fetch_max(now_ms, Ordering::Relaxed);
        }
    }

    /// Whether the call is on hold (every stream held).
    #[cfg(test)]
    pub(super) fn is_held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// Returns true exactly once per arming, when the call is armed and has been silent at
    /// `now_ms` for at least the limit that applies (the on-hold one while held).
    pub(super) fn claim_timeout(&self, now_ms: u64, limits: Limits) -> bool {
        if !self.armed.load(Ordering::Acquire) || self.reported.load(Ordering::Relaxed) {
            return false;
        }
        let limit_ms = if self.held.load(Ordering::Relaxed) {
            limits.hold_ms
        } else {
            limits.normal_ms
        };
        if limit_ms == 0 {
            return false;
        }
        let last = self.last_packet_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < limit_ms {
            return false;
        }
        self.reported
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Gives back a claimed report that could not be delivered, so a later check retries it.
    pub(super) fn unclaim_timeout(&self) {
        self.reported.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 s normal timeout, 10 s on hold: the fake clock is the `now_ms` the tests pass.
    const LIMITS: Limits = Limits {
        normal_ms: 1_000,
        hold_ms: 10_000,
    };

    #[test]
    fn silence_before_arming_never_times_out() {
        let activity = CallActivity::default();
        assert!(!activity.claim_timeout(100_000, LIMITS));
    }

    #[test]
    fn times_out_once_after_the_silence_since_arming() {
        let activity = CallActivity::default();
        activity.arm(10_000);
        assert!(!activity.claim_timeout(10_500, LIMITS));
        assert!(activity.claim_timeout(11_000, LIMITS));
        assert!(!activity.claim_timeout(20_000, LIMITS));
    }

    #[test]
    fn rtp_on_any_stream_postpones_the_timeout() {
        let activity = CallActivity::default();
        activity.arm(0);
        activity.note_packet(900);
        // An older note from a slower stream does not move the time back.
        activity.note_packet(400);
        assert!(!activity.claim_timeout(1_500, LIMITS));
        assert!(activity.claim_timeout(1_900, LIMITS));
    }

    #[test]
    fn re_arming_allows_another_report() {
        let activity = CallActivity::default();
        activity.arm(0);
        assert!(activity.claim_timeout(5_000, LIMITS));
        activity.arm(5_000);
        assert!(!activity.claim_timeout(5_100, LIMITS));
        assert!(activity.claim_timeout(6_000, LIMITS));
    }

    #[test]
    fn an_undelivered_report_can_be_claimed_again() {
        let activity = CallActivity::default();
        activity.arm(0);
        assert!(activity.claim_timeout(2_000, LIMITS));
        activity.unclaim_timeout();
        assert!(activity.claim_timeout(2_100, LIMITS));
    }

    #[test]
    fn a_held_call_outlives_the_normal_timeout() {
        let activity = CallActivity::default();
        activity.arm(0);
        activity.set_held(true, 0);
        assert!(activity.is_held());
        // Nine normal timeouts of silence: no report while on hold.
        assert!(!activity.claim_timeout(9_000, LIMITS));
    }

    #[test]
    fn a_held_call_times_out_after_the_hold_limit() {
        let activity = CallActivity::default();
        activity.arm(0);
        activity.set_held(true, 0);
        assert!(!activity.claim_timeout(9_999, LIMITS));
        assert!(activity.claim_timeout(10_000, LIMITS));
    }

    #[test]
    fn a_zero_hold_limit_never_times_out_a_held_call() {
        let activity = CallActivity::default();
        activity.arm(0);
        activity.set_held(true, 0);
        let limits = Limits {
            hold_ms: 0,
            ..LIMITS
        };
        assert!(!activity.claim_timeout(u64::MAX, limits));
    }

    #[test]
    fn rtcp_alone_keeps_a_call_alive() {
        // The relay notes RTCP like RTP; a receiver report every 5 s keeps even a call that is
        // not on hold from its 6 s timeout.
        let activity = CallActivity::default();
        let limits = Limits {
            normal_ms: 6_000,
            hold_ms: 0,
        };
        activity.arm(0);
        for report_ms in (5_000..=60_000).step_by(5_000) {
            assert!(!activity.claim_timeout(report_ms, limits), "{report_ms}");
            activity.note_packet(report_ms);
        }
        assert!(activity.claim_timeout(66_000, limits));
    }

    #[test]
    fn rtcp_keeps_a_held_call_past_the_hold_limit() {
        let activity = CallActivity::default();
        activity.arm(0);
        activity.set_held(true, 0);
        for report_ms in (5_000..=50_000).step_by(5_000) {
            activity.note_packet(report_ms);
        }
        assert!(!activity.claim_timeout(55_000, LIMITS));
        assert!(activity.claim_timeout(60_000, LIMITS));
    }

    #[test]
    fn taking_the_call_off_hold_returns_to_the_normal_timeout() {
        let activity = CallActivity::default();
        activity.arm(0);
        activity.set_held(true, 0);
        assert!(!activity.claim_timeout(5_000, LIMITS));
        // Off hold after 5 s of silence: the normal limit again, counted from the change.
        activity.set_held(false, 5_000);
        assert!(!activity.is_held());
        assert!(!activity.claim_timeout(5_999, LIMITS));
        assert!(activity.claim_timeout(6_000, LIMITS));
    }

    #[test]
    fn repeating_the_same_hold_state_does_not_postpone_the_timeout() {
        let activity = CallActivity::default();
        activity.arm(0);
        activity.set_held(false, 900);
        assert!(activity.claim_timeout(1_000, LIMITS));
    }
}
