//! Which relay worker a new call's streams go to.
//!
//! Calls are packed, not spread: a call goes to the first running worker (in thread order)
//! expected to stay within [`FILL_TARGET`] of a CPU with one more stream, and only when every
//! worker is that busy to the one expected to be least busy. A worker pays one wake-up (the
//! sleeping `epoll_wait`, the switch back) per batch of ready sockets, so a light load spread
//! over every thread makes each wake up for fewer packets: two workers sharing 500 calls on a
//! 2-CPU machine cost ×1.46–1.48 the bare relay per packet where packed onto one they cost
//! ×1.09–1.12 (BENCHMARKS.md, "fourth round"). Under heavy load the calls spread out, so that no
//! thread's queue grows long enough to be heard.
//!
//! A worker's expected load is its CPU share at its last tick or its stream count times the
//! cost of a stream, whichever is larger; streams placed since the last tick count at once.
//! A stream is priced as if both legs sent audio ([`STREAM_PACKET_RATE`]) at the cost per
//! packet the workers measured, because calls are placed before their media flows: a burst of
//! calls that are still ringing would otherwise measure as free and all land on one worker.
//! The measured cost stands only while the workers receive at least half of the audio their
//! streams would carry ([`MEASURED_SHARE_MIN`]); otherwise [`PRIOR_PACKET_COST`] stands in. A
//! burst of new calls sends mostly first packets (latching, connecting the socket), which cost
//! several times an audio packet: priced by them, 2,000 calls set up at once started on the
//! second worker when the first had 265–416 streams instead of at the target. With the kernel fast path carrying the audio, the
//! prior prices the streams too, as if the relay carried them.

use crate::media::stats::WorkerLoad;

/// Share of one CPU a worker is filled to before the next worker takes new calls. Packing
/// pays off at light load, where a wake-up serves few packets; at 0.4 a worker already serves
/// several per wake-up, and the rest of the core is left for bursts and the kernel's share of
/// it (a worker's queueing delay grows steeply as it nears a whole CPU: 2,000 calls on one
/// worker at 0.7–0.9 of a CPU had a median delay of 0.5–1.5 ms against 0.13–0.16 ms spread over
/// two). Against 0.5 the runs did not decide; 0.4 is the more cautious (BENCHMARKS.md).
pub(super) const FILL_TARGET: f64 = 0.4;
/// Packets a second a stream carries when both legs send audio every 20 ms.
pub(super) const STREAM_PACKET_RATE: f64 = 100.0;
/// CPU seconds a relayed packet is taken to cost until measured: about what the relay costs on
/// a 2-CPU VM, the kernel's share in the thread's time included (BENCHMARKS.md).
pub(super) const PRIOR_PACKET_COST: f64 = 4e-6;
/// Share of their streams' full audio rate the workers must receive before their measured cost
/// per packet replaces the prior: below it, first packets and the fixed cost of ticks and
/// wake-ups would dominate the measurement.
const MEASURED_SHARE_MIN: f64 = 0.5;
/// Packets a second the workers must receive, whatever their streams, for the same reason.
const MEASURED_RATE_MIN: f64 = 1000.0;

/// What placement reads of one worker.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Sample {
    /// Share of one CPU the worker used over its last tick.
    pub(super) cpu: f64,
    /// Streams the worker ran over that tick.
    pub(super) measured: u32,
    /// Packets a second it received over that tick.
    pub(super) packet_rate: u32,
    /// Streams on the worker now.
    pub(super) placed: u32,
    /// The worker has left its loop: it cannot take a call.
    pub(super) stopped: bool,
}

impl From<&WorkerLoad> for Sample {
    fn from(load: &WorkerLoad) -> Self {
        Sample {
            cpu: load.cpu_share(),
            measured: load.measured_streams(),
            packet_rate: load.packet_rate(),
            placed: load.placed(),
            stopped: load.stopped(),
        }
    }
}

/// The index of the worker a new call goes to: the first running one with room, else the
/// running one expected to be least busy (0 when none runs; starting the stream then fails).
pub(super) fn choose(workers: &[Sample]) -> usize {
    let per_stream = stream_cost(workers);
    let expected = |w: &Sample| w.cpu.max(f64::from(w.placed) * per_stream);
    let running = workers.iter().enumerate().filter(|(_, w)| !w.stopped);
    if let Some((index, _)) = running
        .clone()
        .find(|(_, w)| expected(w) + per_stream <= FILL_TARGET)
    {
        return index;
    }
    running
        .min_by(|a, b| expected(a.1).total_cmp(&expected(b.1)))
        .map_or(0, |(index, _)| index)
}

/// Share of one CPU a stream is expected to cost: the workers' average per stream, or a stream
/// carrying audio both ways at the measured cost per packet (the prior while the workers receive
/// less than half of their streams' audio), whichever is larger.
fn stream_cost(workers: &[Sample]) -> f64 {
    // A stopped worker's figures are frozen at its last tick: they price nothing.
    let running = workers.iter().filter(|w| !w.stopped);
    let (cpu, streams, rate) = running.fold((0.0, 0.0, 0.0), |(c, s, r), w| {
        (
            c + w.cpu,
            s + f64::from(w.measured),
            r + f64::from(w.packet_rate),
        )
    });
    let representative = (streams * STREAM_PACKET_RATE * MEASURED_SHARE_MIN).max(MEASURED_RATE_MIN);
    let per_packet = if rate >= representative {
        cpu / rate
    } else {
        PRIOR_PACKET_COST
    };
    let average = if streams > 0.0 { cpu / streams } else { 0.0 };
    average.max(per_packet * STREAM_PACKET_RATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu: f64, measured: u32, packet_rate: u32, placed: u32) -> Sample {
        Sample {
            cpu,
            measured,
            packet_rate,
            placed,
            stopped: false,
        }
    }

    const IDLE: Sample = Sample {
        cpu: 0.0,
        measured: 0,
        packet_rate: 0,
        placed: 0,
        stopped: false,
    };

    #[test]
    fn a_light_load_stays_on_the_first_worker() {
        // 500 calls' audio at 0.22 of a CPU (4.4 µs a packet): the next call goes there too.
        let workers = [sample(0.22, 500, 50_000, 500), IDLE];
        assert_eq!(choose(&workers), 0);
    }

    #[test]
    fn a_worker_at_the_target_sends_new_calls_to_the_next() {
        let workers = [sample(0.4, 900, 90_000, 900), IDLE];
        assert_eq!(choose(&workers), 1);
        // 0.39 of a CPU and 0.45 ‰ a stream: the second worker still has room for one.
        let workers = [
            sample(0.45, 1000, 100_000, 1000),
            sample(0.39, 880, 88_000, 880),
            IDLE,
        ];
        assert_eq!(choose(&workers), 1);
        let workers = [
            sample(0.45, 1000, 100_000, 1000),
            sample(0.3998, 900, 90_000, 900),
            IDLE,
        ];
        assert_eq!(choose(&workers), 2);
    }

    #[test]
    fn calls_still_ringing_are_priced_as_if_their_audio_flowed() {
        // No packets yet: each stream is taken to cost 100 packets a second at the prior cost,
        // 0.4 ‰ of a CPU, so the first worker is full at 1,000 streams.
        let workers = [sample(0.001, 990, 0, 990), IDLE];
        assert_eq!(choose(&workers), 0);
        let workers = [sample(0.001, 1000, 0, 1000), IDLE];
        assert_eq!(choose(&workers), 1);
    }

    #[test]
    fn first_packets_of_new_calls_do_not_price_the_streams() {
        // 265 new streams sent 1,500 first packets at 10 µs each: too few to stand for audio,
        // so the prior prices a stream (0.4 ‰) and the worker has room for more.
        let workers = [sample(0.015, 265, 1500, 265), IDLE];
        assert_eq!(choose(&workers), 0);
        // The same cost measured over their audio (26,500 packets a second) would fill it.
        let workers = [sample(0.265, 265, 26_500, 900), IDLE];
        assert_eq!(choose(&workers), 1);
    }

    #[test]
    fn streams_placed_since_the_last_tick_count_at_once() {
        // Measured light, but 800 more streams have arrived since, at 0.5 ‰ a stream each.
        let workers = [sample(0.1, 200, 20_000, 1000), IDLE];
        assert_eq!(choose(&workers), 1);
    }

    #[test]
    fn when_every_worker_is_full_the_least_loaded_takes_the_call() {
        let workers = [
            sample(0.9, 1000, 100_000, 1000),
            sample(0.7, 800, 80_000, 800),
            sample(0.8, 900, 90_000, 900),
        ];
        assert_eq!(choose(&workers), 1);
    }

    #[test]
    fn before_any_measurement_the_first_worker_takes_the_calls() {
        let workers = [sample(0.0, 0, 0, 40), IDLE];
        assert_eq!(choose(&workers), 0);
        assert_eq!(choose(&[]), 0);
    }

    #[test]
    fn a_stopped_worker_takes_no_calls() {
        // Its frozen figures say it has room; the running workers take the calls instead.
        let stopped = Sample {
            stopped: true,
            ..sample(0.1, 100, 10_000, 100)
        };
        assert_eq!(choose(&[stopped, IDLE]), 1);
        let busy = sample(0.9, 1000, 100_000, 1000);
        assert_eq!(choose(&[stopped, busy, sample(0.8, 900, 90_000, 900)]), 2);
        assert_eq!(choose(&[stopped, stopped]), 0);
        // Its frozen cost (0.9 of a CPU for 100 streams) does not price the others' streams.
        let frozen = Sample {
            stopped: true,
            ..sample(0.9, 100, 10_000, 100)
        };
        assert_eq!(choose(&[frozen, sample(0.22, 500, 50_000, 500), IDLE]), 1);
    }

    #[test]
    fn a_drained_first_worker_takes_calls_again() {
        // The first worker's calls ended: it is preferred again over a busier second one.
        let workers = [
            sample(0.05, 100, 10_000, 100),
            sample(0.35, 800, 80_000, 800),
        ];
        assert_eq!(choose(&workers), 0);
    }

    #[test]
    fn a_sample_reads_what_the_worker_and_the_engine_published() {
        let load = WorkerLoad::default();
        load.publish(0.375, 300, 30_000.4);
        load.stream_placed();
        load.stream_placed();
        load.stream_removed();
        assert_eq!(Sample::from(&load), sample(0.375, 300, 30_000, 1));
        load.stream_removed();
        load.stream_removed();
        assert_eq!(load.placed(), 0, "never wraps below zero");
        load.publish(f64::NAN, 0, -5.0);
        assert_eq!(Sample::from(&load), IDLE);
        load.mark_stopped();
        assert!(Sample::from(&load).stopped);
    }
}
