//! Relay worker threads. Each runs one level-triggered epoll loop over the sockets of every
//! stream it carries and dispatches a ready socket straight to its stream's state: no task, no
//! waker, no per-stream timer. A readiness report is answered with one receive, so a packet
//! costs one `recvfrom` and one `send` (an edge-triggered loop must also read until
//! `EAGAIN`, a third system call per packet at RTP rates, where a socket rarely holds two).
//!
//! A stream lives on one worker for its whole life (all streams of a call share one), so a
//! packet is received, inspected and sent on the thread whose epoll saw it and the stream's
//! state stays in that core's cache. The engine reaches a worker through its inbox: commands in
//! a queue, and an eventfd in the epoll set that is written once per batch of commands.
//! Commands are taken before the sockets of every batch, so an instruction sent before a packet
//! arrived applies to it. Every stream's tick falls on one grid (multiples of [`TICK`] from the
//! engine clock): one pass over the worker's streams per tick. Sounds and synthesized packets
//! wait in one timer heap per worker.
//!
//! Which worker a call goes to is decided by the load each worker publishes at its tick
//! (`placement`): calls fill the first worker before the next one takes any.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, Timespec, epoll, eventfd};
use tracing::{debug, error, trace, warn};

use super::meter::CpuMeter;
use super::placement::{self, Sample};
use super::{Control, RECV_BUFFER_LEN, Relay, RelayContext, TICK, micros_since};
use crate::media::inspect::PacketInspector;
use crate::media::prefetch::prefetch;
use crate::media::sockets::{Port, RelaySockets, StreamSockets};
use crate::media::stats::{MediaStats, PacketKind, WorkerLoad};

/// Readiness reports taken per `epoll_wait`.
const EVENTS: usize = 1024;
/// The token of the inbox's eventfd (no stream's token can be all ones: the slot is 29 bits).
const WAKE: u64 = u64::MAX;
/// Socket numbers in a token after the four of `Port::index`: a consultation's RTP and RTCP.
const CONSULT_RTP: u64 = 4;
const CONSULT_RTCP: u64 = 5;

/// What the engine asks of a worker.
enum Command {
    /// Relay a new stream.
    Start {
        id: u64,
        sockets: StreamSockets,
        ctx: Box<RelayContext>,
        inspector: Option<Box<dyn PacketInspector>>,
    },
    /// An instruction for a running stream.
    Control { id: u64, msg: Control },
    /// The stream is released: close its sockets.
    Stop { id: u64 },
    /// The engine is dropped: stop every stream and the thread.
    Shutdown,
}

/// Where a worker's commands arrive, shared by the engine's handles.
struct Inbox {
    queue: mpsc::Sender<Command>,
    /// In the worker's epoll set; written to wake the worker when commands wait.
    wake: OwnedFd,
    /// Whether the eventfd was written since the worker last cleared it: a burst of commands
    /// costs one write, not one each.
    signalled: AtomicBool,
    /// The engine's counters, where this worker's load is entry `index`.
    stats: Arc<MediaStats>,
    index: usize,
}

/// The worker this handle's stream lives on is gone (the engine is shutting down).
#[derive(Debug)]
pub(crate) struct WorkerGone;

impl Inbox {
    /// This worker's load in the engine's counters.
    fn load(&self) -> Option<&WorkerLoad> {
        self.stats.workers().get(self.index)
    }

    fn send(&self, command: Command) -> Result<(), WorkerGone> {
        self.queue.send(command).map_err(|_| WorkerGone)?;
        // SeqCst on both sides (here and in `clear_wake`): each side writes one location and
        // then reads the other, which only sequential consistency keeps from both missing.
        if !self.signalled.swap(true, Ordering::SeqCst) {
            // An eventfd write fails only when its counter would overflow, which a worker
            // clearing it on every wake-up never lets happen.
            let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
        }
        Ok(())
    }
}

/// Marks its worker stopped in the engine's counters when dropped: at the end of the worker's
/// loop, and when a panic unwinds the thread.
struct StopMark(Arc<Inbox>);

impl Drop for StopMark {
    fn drop(&mut self) {
        if let Some(load) = self.0.load() {
            load.mark_stopped();
        }
    }
}

/// The engine's handle to one running stream: instructions go to its worker, and dropping the
/// handle stops the stream and closes its sockets.
pub(crate) struct StreamControl {
    id: u64,
    /// The stream's worker's inbox; the stream counts on that worker's load until dropped.
    inbox: Arc<Inbox>,
}

impl StreamControl {
    /// Queues `msg` for the stream; it applies before any packet that arrives after this call.
    pub(crate) fn send(&self, msg: Control) -> Result<(), WorkerGone> {
        self.inbox.send(Command::Control { id: self.id, msg })
    }
}

impl Drop for StreamControl {
    fn drop(&mut self) {
        let _ = self.inbox.send(Command::Stop { id: self.id });
        if let Some(load) = self.inbox.load() {
            load.stream_removed();
        }
    }
}

/// The relay worker threads of an engine.
pub(crate) struct RelayWorkers {
    workers: Vec<WorkerThread>,
    /// Identity of the next stream started (unique per engine).
    next_id: u64,
}

/// One worker thread and the way to reach it.
struct WorkerThread {
    inbox: Arc<Inbox>,
    thread: Option<JoinHandle<()>>,
}

impl RelayWorkers {
    /// Starts `count` worker threads (at least one) whose ticks fall on the grid of `clock`;
    /// each publishes its load in `stats`, which must have room for `count` workers.
    pub(crate) fn start(count: usize, clock: Instant, stats: Arc<MediaStats>) -> io::Result<Self> {
        let mut workers = Vec::with_capacity(count.max(1));
        for index in 0..count.max(1) {
            let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
            let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            epoll::add(
                &epoll,
                &wake,
                epoll::EventData::new_u64(WAKE),
                epoll::EventFlags::IN,
            )?;
            let (queue, commands) = mpsc::channel();
            let inbox = Arc::new(Inbox {
                queue,
                wake,
                signalled: AtomicBool::new(false),
                stats: Arc::clone(&stats),
                index,
            });
            let worker = Worker {
                epoll,
                inbox: Arc::clone(&inbox),
                commands,
                streams: Vec::new(),
                free: Vec::new(),
                ids: HashMap::new(),
                generation: 0,
                timers: BinaryHeap::new(),
                clock,
            };
            let thread = std::thread::Builder::new()
                .name(format!("mfp-relay-{index}"))
                .spawn(move || worker.run())?;
            workers.push(WorkerThread {
                inbox,
                thread: Some(thread),
            });
        }
        Ok(RelayWorkers {
            workers,
            next_id: 0,
        })
    }

    /// The worker a new call's streams should go to, by the load the workers last published
    /// (see `placement`).
    pub(crate) fn place(&self) -> usize {
        let samples: Vec<Sample> = self
            .workers
            .iter()
            .map(|worker| worker.inbox.load().map(Sample::from).unwrap_or_default())
            .collect();
        placement::choose(&samples)
    }

    /// Starts relaying a stream on worker `index`, from [`Self::place`] for a call's first
    /// stream and the same again for the others (all streams of a call share one worker).
    pub(crate) fn spawn(
        &mut self,
        index: usize,
        sockets: StreamSockets,
        ctx: RelayContext,
        inspector: Option<Box<dyn PacketInspector>>,
    ) -> Result<StreamControl, WorkerGone> {
        let worker = self.workers.get(index).ok_or(WorkerGone)?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        worker.inbox.send(Command::Start {
            id,
            sockets,
            ctx: Box::new(ctx),
            inspector,
        })?;
        if let Some(load) = worker.inbox.load() {
            load.stream_placed();
        }
        Ok(StreamControl {
            id,
            inbox: Arc::clone(&worker.inbox),
        })
    }
}

impl Drop for RelayWorkers {
    fn drop(&mut self) {
        // Every worker is told first, so they stop together; each is joined as it is dropped.
        for worker in &self.workers {
            let _ = worker.inbox.send(Command::Shutdown);
        }
    }
}

impl Drop for WorkerThread {
    /// Stops and joins the thread, also when the engine never finished starting its workers.
    fn drop(&mut self) {
        let _ = self.inbox.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One stream on a worker. `repr(C)`: the token check and the sockets' descriptors, which
/// every packet reads first, share the entry's first cache line.
#[repr(C)]
struct Entry {
    /// The engine's identity of the stream.
    id: u64,
    /// Part of the stream's socket tokens: a report for a slot's previous stream is ignored.
    generation: u32,
    /// When the stream's next synthesized packet or sound packet is due (engine clock, µs),
    /// as last pushed onto the timer heap.
    armed: Option<u64>,
    sockets: RelaySockets,
    relay: Relay,
}

/// The state of one worker thread.
struct Worker {
    epoll: OwnedFd,
    inbox: Arc<Inbox>,
    commands: mpsc::Receiver<Command>,
    /// Streams by slot; a slot's number is in its sockets' tokens.
    streams: Vec<Option<Box<Entry>>>,
    /// Slots free for reuse.
    free: Vec<u32>,
    /// Slot of each stream, by the engine's identity (commands only; packets come by token).
    ids: HashMap<u64, u32>,
    generation: u32,
    /// Due injections: (due µs, slot, generation); an entry whose stream re-armed is skipped.
    timers: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// The engine clock: tick grid and every stream's timestamps.
    clock: Instant,
}

/// Lets a stream register the sockets it gains while running (a consultation's pair) under its
/// own tokens.
pub(super) struct Registrar<'a> {
    epoll: BorrowedFd<'a>,
    /// The stream's token with the socket number zero.
    base: u64,
}

impl Registrar<'_> {
    /// Registers a consultation's sockets for readability.
    pub(super) fn add_consult(&self, rtp: impl AsFd, rtcp: impl AsFd) -> io::Result<()> {
        self.add(rtp, CONSULT_RTP)?;
        self.add(rtcp, CONSULT_RTCP)
    }

    /// Re-registers the socket `fd` as the stream's socket `port` (a consultation's socket
    /// that takes a leg's place). On failure the socket leaves the epoll set: still reported
    /// under the consultation's token, which nothing reads any more, it would be reported
    /// forever.
    pub(super) fn rebind(&self, fd: impl AsFd, port: Port) -> io::Result<()> {
        let fd = fd.as_fd();
        let rebound = epoll::modify(
            self.epoll,
            fd,
            epoll::EventData::new_u64(self.base | port_number(port)),
            epoll::EventFlags::IN,
        );
        if rebound.is_err() {
            let _ = epoll::delete(self.epoll, fd);
        }
        rebound.map_err(Into::into)
    }

    fn add(&self, fd: impl AsFd, socket: u64) -> io::Result<()> {
        epoll::add(
            self.epoll,
            fd,
            epoll::EventData::new_u64(self.base | socket),
            epoll::EventFlags::IN,
        )
        .map_err(Into::into)
    }
}

/// A socket's number in a token.
fn port_number(port: Port) -> u64 {
    u64::try_from(port.index()).unwrap_or(0)
}

/// The slot a token names.
fn slot_of(token: u64) -> u32 {
    ((token >> 3) & ((1 << 29) - 1)) as u32
}

/// The token of socket number 0 of the stream in `slot`.
fn token_base(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | (u64::from(slot) << 3)
}

impl Worker {
    fn run(mut self) {
        // Marks the worker stopped however the loop ends (an error, or a panic outside the
        // guards), so that no new call is placed on it.
        let _mark = StopMark(Arc::clone(&self.inbox));
        let mut events: Vec<epoll::Event> = Vec::with_capacity(EVENTS);
        let mut buf = vec![0u8; RECV_BUFFER_LEN];
        let mut next_tick = super::next_tick(self.clock);
        let mut meter = CpuMeter::start();
        loop {
            let timeout = self.timeout(next_tick);
            events.clear();
            let waited = epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                Some(&timeout),
            );
            match waited {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => {
                    warn!(%err, "relay worker cannot wait for its sockets; its streams stop");
                    break;
                }
            }
            meter.reports += events.len();
            if events.iter().any(|event| event.data.u64() == WAKE) {
                self.clear_wake();
            }
            // Instructions sent before these packets arrived are in the queue by now.
            if !self.take_commands() {
                break;
            }
            self.prefetch_batch(&events);
            self.relay_batch(&events, &mut buf);
            self.run_timers();
            if Instant::now() >= next_tick {
                if let Some(load) = self.inbox.load() {
                    meter.publish(load, self.ids.len());
                }
                self.tick_all();
                next_tick += TICK;
                let now = Instant::now();
                if next_tick <= now {
                    // Missed ticks are not caught up: the next one is on the grid after now.
                    next_tick = super::next_tick(self.clock);
                }
            }
        }
        for slot in 0..self.streams.len() {
            if let Ok(slot) = u32::try_from(slot) {
                self.close(slot);
            }
        }
    }

    /// How long the next wait may last: until the tick or the earliest injection, rounded up
    /// to the millisecond `epoll_wait` counts in (rounding down would wake up early and spin).
    fn timeout(&self, next_tick: Instant) -> Timespec {
        let now = Instant::now();
        let mut until = next_tick;
        if let Some(Reverse((due_us, _, _))) = self.timers.peek()
            && let Some(due) = self.clock.checked_add(Duration::from_micros(*due_us))
        {
            until = until.min(due);
        }
        let wait = until.saturating_duration_since(now);
        let millis = wait.as_micros().div_ceil(1000);
        let millis = i64::try_from(millis).unwrap_or(i64::MAX);
        Timespec {
            tv_sec: millis / 1000,
            tv_nsec: (millis % 1000) * 1_000_000,
        }
    }

    fn clear_wake(&self) {
        let mut counter = [0u8; 8];
        // Nonblocking: a read finding the counter already zero fails with EAGAIN, harmlessly.
        let _ = rustix::io::read(&self.inbox.wake, &mut counter);
        // Cleared before the queue is read: a command queued after this is either read below
        // or signals again.
        self.inbox.signalled.store(false, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Applies every queued command; false when the worker must stop.
    fn take_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Start {
                    id,
                    sockets,
                    ctx,
                    inspector,
                }) => self.start(id, sockets, *ctx, inspector),
                Ok(Command::Control { id, msg }) => self.control(id, msg),
                Ok(Command::Stop { id }) => self.stop(id),
                Ok(Command::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => return false,
                Err(mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    fn start(
        &mut self,
        id: u64,
        sockets: StreamSockets,
        ctx: RelayContext,
        inspector: Option<Box<dyn PacketInspector>>,
    ) {
        let (call, stream) = (ctx.call, ctx.stream);
        let sockets = match RelaySockets::new(sockets) {
            Ok(sockets) => sockets,
            Err(err) => {
                debug!(call, stream, %err, "media sockets not usable; the stream is not relayed");
                return;
            }
        };
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => match u32::try_from(self.streams.len()) {
                Ok(slot) if slot < (1 << 29) => {
                    self.streams.push(None);
                    slot
                }
                _ => {
                    debug!(call, stream, "relay worker full; the stream is not relayed");
                    return;
                }
            },
        };
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let base = token_base(slot, generation);
        for port in Port::ALL {
            let registered = epoll::add(
                &self.epoll,
                sockets.get(port),
                epoll::EventData::new_u64(base | port_number(port)),
                epoll::EventFlags::IN,
            );
            if let Err(err) = registered {
                debug!(call, stream, %err, "media sockets not registered; the stream is not relayed");
                self.free.push(slot);
                return;
            }
        }
        let relay = Relay::new(ctx, inspector);
        relay.ctx.stats.stream_started();
        if let Some(place) = self.streams.get_mut(slot as usize) {
            *place = Some(Box::new(Entry {
                id,
                generation,
                relay,
                sockets,
                armed: None,
            }));
            self.ids.insert(id, slot);
        }
    }

    fn control(&mut self, id: u64, msg: Control) {
        let Some(&slot) = self.ids.get(&id) else {
            return;
        };
        if self.with_stream(slot, |entry, registrar| {
            entry.relay.apply(msg, &mut entry.sockets, registrar);
        }) {
            self.rearm(slot);
        }
    }

    /// Runs `work` on the stream in `slot`. A panic in it ends that stream alone (logged, its
    /// counters flushed, its sockets closed) and the worker carries on with the others; false
    /// then, or when the slot is empty.
    fn with_stream(&mut self, slot: u32, work: impl FnOnce(&mut Entry, &Registrar<'_>)) -> bool {
        let epoll = self.epoll.as_fd();
        let Some(entry) = self.streams.get_mut(slot as usize).and_then(Option::as_mut) else {
            return false;
        };
        let registrar = Registrar {
            epoll,
            base: token_base(slot, entry.generation),
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(entry, &registrar)));
        if outcome.is_ok() {
            return true;
        }
        self.fail_stream(slot);
        false
    }

    /// Ends the stream in `slot` after a panic in its code: logged, counters flushed, sockets
    /// closed; the worker's other streams go on.
    fn fail_stream(&mut self, slot: u32) {
        if let Some(entry) = self.close(slot) {
            error!(
                call = entry.relay.ctx.call,
                stream = entry.relay.ctx.stream,
                "media relay of the stream failed (a bug); the stream is no longer relayed"
            );
        }
    }

    /// Relays one datagram per readiness report of the batch. The guard against a panic is
    /// around the batch, not each packet (where it measurably cost): a panic ends the stream
    /// whose report was being served, and the batch goes on after it.
    fn relay_batch(&mut self, events: &[epoll::Event], buf: &mut [u8]) {
        let mut start = 0;
        while start < events.len() {
            let reached = std::cell::Cell::new(start);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                for (index, event) in events.iter().enumerate().skip(start) {
                    reached.set(index);
                    let token = event.data.u64();
                    if token != WAKE {
                        self.on_ready(token, buf);
                    }
                }
            }));
            if outcome.is_ok() {
                return;
            }
            if let Some(event) = events.get(reached.get()) {
                self.fail_stream(slot_of(event.data.u64()));
            }
            start = reached.get() + 1;
        }
    }

    fn stop(&mut self, id: u64) {
        let Some(&slot) = self.ids.get(&id) else {
            return;
        };
        if let Some(entry) = self.close(slot) {
            trace!(
                call = entry.relay.ctx.call,
                stream = entry.relay.ctx.stream,
                "media relay stopped"
            );
        }
    }

    /// Takes the stream out of `slot`: its counters flushed, the gauge decremented, the slot
    /// free. Dropping what it returns closes the sockets, which takes them out of the epoll set.
    fn close(&mut self, slot: u32) -> Option<Box<Entry>> {
        let mut entry = self.streams.get_mut(slot as usize).and_then(Option::take)?;
        self.ids.remove(&entry.id);
        entry.relay.counters.flush_into(&entry.relay.ctx.stats);
        entry.relay.ctx.stats.stream_stopped();
        self.free.push(slot);
        Some(entry)
    }

    fn entry_mut(&mut self, slot: u32) -> Option<&mut Entry> {
        self.streams
            .get_mut(slot as usize)
            .and_then(Option::as_mut)
            .map(Box::as_mut)
    }

    /// Starts loading the state of every stream in the batch, so that their cache misses
    /// overlap instead of coming one after another (see `media::prefetch`).
    fn prefetch_batch(&self, events: &[epoll::Event]) {
        for event in events {
            let token = event.data.u64();
            if let Some(Some(entry)) = self.streams.get(slot_of(token) as usize) {
                prefetch(&**entry);
                prefetch(&entry.relay);
            }
        }
    }

    /// One readiness report: one datagram received from that socket and relayed.
    fn on_ready(&mut self, token: u64, buf: &mut [u8]) {
        let generation = (token >> 32) as u32;
        let slot = slot_of(token);
        let Some(entry) = self.entry_mut(slot) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        let Entry { relay, sockets, .. } = entry;
        match token & 7 {
            0 => relay.relay_one(sockets, Port::ARtp, buf),
            1 => relay.relay_one(sockets, Port::ARtcp, buf),
            2 => relay.relay_one(sockets, Port::BRtp, buf),
            3 => relay.relay_one(sockets, Port::BRtcp, buf),
            CONSULT_RTP => relay.relay_consult_one(sockets, PacketKind::Rtp, buf),
            CONSULT_RTCP => relay.relay_consult_one(sockets, PacketKind::Rtcp, buf),
            _ => return,
        }
        relay.sync_kernel(sockets);
        self.rearm(slot);
    }

    /// Puts the stream's next injection on the timer heap when it changed.
    fn rearm(&mut self, slot: u32) {
        let Some(entry) = self.entry_mut(slot) else {
            return;
        };
        let due = entry.relay.injection_due();
        if due == entry.armed {
            return;
        }
        entry.armed = due;
        let generation = entry.generation;
        if let Some(due_us) = due {
            self.timers.push(Reverse((due_us, slot, generation)));
        }
    }

    /// Sends every synthesized and sound packet that is due.
    fn run_timers(&mut self) {
        let now_us = micros_since(self.clock);
        while let Some(&Reverse((due_us, slot, generation))) = self.timers.peek() {
            if due_us > now_us {
                return;
            }
            self.timers.pop();
            let Some(entry) = self.entry_mut(slot) else {
                continue;
            };
            if entry.generation != generation || entry.armed != Some(due_us) {
                continue;
            }
            entry.armed = None;
            let served = self.with_stream(slot, |entry, _| {
                entry.relay.inject_due(&entry.sockets, due_us);
                entry.relay.sync_kernel(&entry.sockets);
            });
            if !served {
                continue;
            }
            self.rearm(slot);
            // What was due must have moved on; if it did not (nothing could be written), it is
            // tried again a millisecond later instead of in this same pass, forever.
            if let Some(entry) = self.entry_mut(slot)
                && entry.armed.is_some_and(|next| next <= due_us)
            {
                let retry = now_us.max(due_us).saturating_add(1000);
                entry.armed = Some(retry);
                let generation = entry.generation;
                self.timers.push(Reverse((retry, slot, generation)));
            }
        }
    }

    /// The tick of every stream: counters published, timeouts checked, the kernel's counts
    /// read.
    fn tick_all(&mut self) {
        for slot in 0..self.streams.len() {
            let Ok(slot) = u32::try_from(slot) else {
                return;
            };
            let ticked = self.with_stream(slot, |entry, _| {
                // The kernel's counts first: they are media the timeout must see.
                entry.relay.kernel_tick(&entry.sockets);
                entry.relay.on_tick();
            });
            if ticked {
                self.rearm(slot);
            }
        }
    }
}
