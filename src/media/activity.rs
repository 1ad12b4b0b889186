//! Media-timeout bookkeeping shared by the relay tasks of one call.
//!
//! Relay tasks note RTP activity locally and publish it here on their periodic tick, so the
//! per-packet path stays free of shared writes. Whichever stream's tick first sees the whole
//! call idle for longer than the timeout claims the single timeout report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Timeout state of one call: whether the timeout counts yet, when RTP was last seen on any of
/// its streams, and whether the timeout was already reported.
#[derive(Debug, Default)]
pub(super) struct CallActivity {
    armed: AtomicBool,
    last_rtp_ms: AtomicU64,
    reported: AtomicBool,
}

impl CallActivity {
    /// Starts counting silence from `now_ms` (the call was answered); re-arming after a report
    /// allows one more report.
    pub(super) fn arm(&self, now_ms: u64) {
        self.last_rtp_ms.fetch_max(now_ms, Ordering::Relaxed);
        self.reported.store(false, Ordering::Relaxed);
        self.armed.store(true, Ordering::Release);
    }

    /// Records that one of the call's streams received RTP at (or shortly before) `now_ms`.
    pub(super) fn note_rtp(&self, now_ms: u64) {
        self.last_rtp_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Returns true exactly once per arming, when the call is armed and has been silent for
    /// at least `timeout_ms` at `now_ms`.
    pub(super) fn claim_timeout(&self, now_ms: u64, timeout_ms: u64) -> bool {
        if !self.armed.load(Ordering::Acquire) || self.reported.load(Ordering::Relaxed) {
            return false;
        }
        let last = self.last_rtp_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < timeout_ms {
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

    #[test]
    fn silence_before_arming_never_times_out() {
        let activity = CallActivity::default();
        assert!(!activity.claim_timeout(100_000, 1_000));
    }

    #[test]
    fn times_out_once_after_the_silence_since_arming() {
        let activity = CallActivity::default();
        activity.arm(10_000);
        assert!(!activity.claim_timeout(10_500, 1_000));
        assert!(activity.claim_timeout(11_000, 1_000));
        assert!(!activity.claim_timeout(20_000, 1_000));
    }

    #[test]
    fn rtp_on_any_stream_postpones_the_timeout() {
        let activity = CallActivity::default();
        activity.arm(0);
        activity.note_rtp(900);
        // An older note from a slower stream does not move the time back.
        activity.note_rtp(400);
        assert!(!activity.claim_timeout(1_500, 1_000));
        assert!(activity.claim_timeout(1_900, 1_000));
    }

    #[test]
    fn re_arming_allows_another_report() {
        let activity = CallActivity::default();
        activity.arm(0);
        assert!(activity.claim_timeout(5_000, 1_000));
        activity.arm(5_000);
        assert!(!activity.claim_timeout(5_100, 1_000));
        assert!(activity.claim_timeout(6_000, 1_000));
    }

    #[test]
    fn an_undelivered_report_can_be_claimed_again() {
        let activity = CallActivity::default();
        activity.arm(0);
        assert!(activity.claim_timeout(2_000, 1_000));
        activity.unclaim_timeout();
        assert!(activity.claim_timeout(2_100, 1_000));
    }
}
