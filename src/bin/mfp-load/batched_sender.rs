//! The paced sender for shared endpoints: walks deadlines like the per-packet sender, but queues
//! each due packet in its socket's batch and sends a batch with one `sendmmsg` when it is full,
//! when its oldest packet has waited [`MAX_HOLD`], or before the thread sleeps.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::batch::SendBatch;
use crate::rtp::{PACKET_INTERVAL, Pacing, SLEEP_THRESHOLD, SendStream};
use crate::tally::{Direction, Path, Tally};

/// Longest a queued packet waits for its batch to fill: the latency the batching may add.
const MAX_HOLD: Duration = Duration::from_micros(500);

/// One socket's queue: the socket, the batch and the tally slot of each queued packet.
struct Queue {
    group: u32,
    socket: UdpSocket,
    batch: SendBatch,
    flows: Vec<(Path, Direction)>,
}

impl Queue {
    fn flush(&mut self, tally: &Tally) {
        if self.batch.len() == 0 {
            return;
        }
        let sent = self.batch.send(&self.socket);
        for (index, &(path, direction)) in self.flows.iter().enumerate() {
            if index < sent {
                tally.count_sent(path, direction);
            } else {
                tally.count_send_error();
            }
        }
        self.flows.clear();
    }
}

/// Sends every stream's packets at their deadlines, batched per socket; the share is sorted by
/// phase, so walking it in order for each round visits deadlines in time order.
pub(crate) fn send_paced(
    mut share: Vec<(Duration, SendStream)>,
    pacing: &Pacing,
    tally: &Tally,
) -> Vec<SendStream> {
    let mut queues: Vec<Queue> = Vec::new();
    let mut oldest: Option<Instant> = None;
    for round in 0..pacing.packets {
        let round_start = pacing.start + PACKET_INTERVAL * round;
        for (phase, stream) in &mut share {
            let deadline = round_start + *phase;
            let mut now = Instant::now();
            if deadline > now + SLEEP_THRESHOLD {
                flush_all(&mut queues, tally);
                oldest = None;
                std::thread::sleep(deadline - now);
                now = Instant::now();
            } else if oldest.is_some_and(|t| now.duration_since(t) > MAX_HOLD) {
                flush_all(&mut queues, tally);
                oldest = None;
            }
            let Some(queue) = queue_of(&mut queues, stream) else {
                tally.count_send_error();
                stream.advance();
                continue;
            };
            if queue.batch.len() == crate::batch::BATCH {
                queue.flush(tally);
            }
            let sent_ns = pacing.epoch.elapsed().as_nanos() as u64;
            if let Some(packet) = queue.batch.push(stream.dest) {
                stream.fill(packet, sent_ns);
                queue.flows.push((stream.path, stream.direction));
            }
            oldest.get_or_insert(now);
            stream.advance();
        }
    }
    flush_all(&mut queues, tally);
    share.into_iter().map(|(_, stream)| stream).collect()
}

/// The queue of `stream`'s socket, made on first use; `None` if its socket cannot be cloned.
fn queue_of<'q>(queues: &'q mut Vec<Queue>, stream: &SendStream) -> Option<&'q mut Queue> {
    let position = match queues.iter().position(|q| q.group == stream.group) {
        Some(position) => position,
        None => {
            queues.push(Queue {
                group: stream.group,
                socket: stream.socket.try_clone().ok()?,
                batch: SendBatch::new(),
                flows: Vec::with_capacity(crate::batch::BATCH),
            });
            queues.len() - 1
        }
    };
    queues.get_mut(position)
}

fn flush_all(queues: &mut [Queue], tally: &Tally) {
    for queue in queues {
        queue.flush(tally);
    }
}
