//! The kernel fast path (`media-fastpath`): an eBPF program at TC ingress forwards the audio of
//! latched streams itself, so a relayed packet costs no socket receive, no wake-up and no send.
//!
//! `bpf/fastpath.bpf.c` is the program; its compiled object is embedded here. At start the
//! proxy loads it and attaches it to the ingress of every network interface of the host
//! (loopback included), and each stream's relay installs the flows it may hand to the kernel in the
//! program's map ([`KernelRoutes`]): a flow whose source has latched for good, whose packets the
//! relay would pass on unchanged (apart from the DTMF suppression's renumbering, which the
//! kernel applies too), that is not recorded and towards a leg that hears nothing of the
//! proxy's own. Telephone-events, first packets, strangers and everything else keep reaching the
//! socket and the userspace relay, which remains the path of every machine without BPF.
//!
//! The attachment lives as long as the process: on kernels with TCX (6.6 and later) the links
//! are owned by file descriptors that close when the process ends, however it ends, so no stale
//! filter outlives a crash. On older kernels the program goes through a `clsact` qdisc, and any
//! filter a previous run left behind is removed before attaching.

mod mapped;
#[cfg(test)]
mod program_tests;
mod route;
mod stream;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::str::FromStr;
use std::sync::Mutex;

use aya::maps::{MapData, MapError};
use aya::programs::tc::{
    self, SchedClassifier, SchedClassifierLinkId, TcAttachOptions, TcAttachType,
};
use aya::programs::{LinkOrder, ProgramError};
use aya::util::KernelVersion;
use aya::{Ebpf, EbpfError};

pub(crate) use route::{FlowAddrs, RouteSpec, RtpRewrite, plain};
pub(crate) use stream::{Counted, KernelRoutes, LastSent};

/// The program, as compiled by `bpf/build.sh`.
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../../bpf/fastpath.bpf.o");
/// The classifier's function name in the object (also the name of its filters).
const PROGRAM: &str = "mfp_fastpath";
/// The map the stream relays fill.
const MAP: &str = "routes";

/// Whether audio may be forwarded in the kernel (key `media-fastpath`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FastPathMode {
    /// The kernel path when the process may load BPF programs; else, said once in the log, the
    /// userspace relay.
    #[default]
    Auto,
    /// The kernel path or no start at all.
    Kernel,
    /// The userspace relay only.
    Off,
}

impl FastPathMode {
    /// The spelling used in the config file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            FastPathMode::Auto => "auto",
            FastPathMode::Kernel => "kernel",
            FastPathMode::Off => "off",
        }
    }
}

impl fmt::Display for FastPathMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FastPathMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(FastPathMode::Auto),
            "kernel" => Ok(FastPathMode::Kernel),
            "off" => Ok(FastPathMode::Off),
            other => Err(format!(
                "`{other}` is not a fast path mode: expected auto, kernel or off"
            )),
        }
    }
}

/// Why the kernel path could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FastPathError {
    /// The media address is a wildcard (the map is keyed by the address packets arrive on, and
    /// wildcard sockets are never connected to a latched peer).
    #[error("the kernel path needs media-ip to be one address, not the wildcard {0}")]
    MediaIp(IpAddr),
    /// The object could not be loaded (no BPF permission, kernel without BPF, verifier).
    #[error("cannot load the eBPF program: {0}")]
    Load(#[from] EbpfError),
    /// The classifier could not be loaded or attached.
    #[error("cannot load or attach the eBPF classifier: {0}")]
    Program(#[from] ProgramError),
    /// The route map was missing or unusable.
    #[error("the eBPF route map is unusable: {0}")]
    Map(#[from] MapError),
    /// No interface took the program.
    #[error("no network interface took the eBPF classifier ({0})")]
    NoInterface(String),
    /// The interfaces could not be listed.
    #[error("cannot list network interfaces: {0}")]
    Interfaces(std::io::Error),
}

/// The loaded program, its attachments and its map. Dropping it detaches the program.
pub struct FastPath {
    /// Owns the program and its links: dropping it detaches them. Locked to attach the program
    /// to an interface that appeared after start.
    loaded: Mutex<Ebpf>,
    /// The route map; each stream's relay opens its own handle on it.
    map: MapData,
    /// The same map in memory, where the tasks read the counters.
    mapped: std::sync::Arc<mapped::MappedRoutes>,
    /// Interfaces the program is attached to, for the log, for attaching new ones and for
    /// detaching from those that went away.
    interfaces: Mutex<Vec<Attached>>,
    /// Whether the kernel links by TCX (6.6 and later) rather than through `clsact`.
    tcx: bool,
}

/// One interface the program is attached to.
#[derive(Debug)]
struct Attached {
    /// Its name now (for the log; a rename keeps the index).
    name: String,
    /// Its index: what identifies it (an interface removed and made again is a new one).
    index: u32,
    /// The attachment, to detach when the interface goes away (with TCX a link holds a file
    /// descriptor until detached).
    link: SchedClassifierLinkId,
}

impl fmt::Debug for FastPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastPath")
            .field("interfaces", &self.interfaces())
            .finish_non_exhaustive()
    }
}

impl FastPath {
    /// Sets the kernel path up as `mode` says. `Ok(None)`: the userspace relay only (mode
    /// `off`, or `auto` on a machine that cannot load BPF programs, logged once here). An error
    /// only in mode `kernel`.
    pub fn start(mode: FastPathMode, media_ip: IpAddr) -> Result<Option<FastPath>, FastPathError> {
        if mode == FastPathMode::Off {
            return Ok(None);
        }
        match Self::load(media_ip) {
            Ok(fastpath) => {
                tracing::info!(
                    interfaces = ?fastpath.interfaces(),
                    "media fast path in the kernel: latched audio is forwarded by eBPF at TC ingress"
                );
                Ok(Some(fastpath))
            }
            Err(error) if mode == FastPathMode::Auto => {
                tracing::info!(
                    reason = %error,
                    "media fast path not available; the userspace relay forwards all media \
                     (media-fastpath = auto)"
                );
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    fn load(media_ip: IpAddr) -> Result<FastPath, FastPathError> {
        if media_ip.is_unspecified() {
            return Err(FastPathError::MediaIp(media_ip));
        }
        let mut loaded = Ebpf::load(OBJECT)?;
        let map = loaded.take_map(MAP).ok_or(MapError::InvalidName {
            name: MAP.to_owned(),
        })?;
        let map = match map {
            aya::maps::Map::Array(data) => data,
            _ => {
                return Err(FastPathError::Map(MapError::InvalidName {
                    name: MAP.to_owned(),
                }));
            }
        };
        let program: &mut SchedClassifier = loaded
            .program_mut(PROGRAM)
            .ok_or(ProgramError::NotLoaded)?
            .try_into()?;
        program.load()?;
        let tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
        let mut interfaces = Vec::new();
        let mut refused = Vec::new();
        for (name, index) in interface_names().map_err(FastPathError::Interfaces)? {
            match attach(program, &name, tcx) {
                Ok(link) => interfaces.push(Attached { name, index, link }),
                Err(error) => refused.push(format!("{name}: {error}")),
            }
        }
        if interfaces.is_empty() {
            return Err(FastPathError::NoInterface(refused.join("; ")));
        }
        if !refused.is_empty() {
            tracing::warn!(refused = ?refused, "some interfaces did not take the media fast path");
        }
        let mapped = mapped::MappedRoutes::map(&map.fd().as_fd())
            .map_err(|error| FastPathError::Map(MapError::IoError(error)))?;
        Ok(FastPath {
            loaded: Mutex::new(loaded),
            map,
            mapped: std::sync::Arc::new(mapped),
            interfaces: Mutex::new(interfaces),
            tcx,
        })
    }

    /// The interfaces the program is attached to.
    pub fn interfaces(&self) -> Vec<String> {
        let attached = self
            .interfaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        attached.iter().map(|a| a.name.clone()).collect()
    }

    /// Attaches the program to the interfaces that appeared since it last looked (a VLAN, a
    /// bond, a container's veth brought up after start) and detaches it from those that went
    /// away. Returns the names newly attached; an interface that refuses is logged at debug and
    /// tried again next time. Cheap enough to call every few seconds: one directory listing.
    pub fn attach_new_interfaces(&self) -> Vec<String> {
        let present = match interface_names() {
            Ok(present) => present,
            Err(error) => {
                tracing::debug!(%error, "cannot list network interfaces");
                return Vec::new();
            }
        };
        let mut attached = self
            .interfaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(program) = loaded
            .program_mut(PROGRAM)
            .and_then(|p| <&mut SchedClassifier>::try_from(p).ok())
        else {
            return Vec::new();
        };
        let mut kept = Vec::with_capacity(attached.len());
        for mut known in attached.drain(..) {
            match present.iter().find(|(_, index)| *index == known.index) {
                Some((name, _)) => {
                    known.name.clone_from(name);
                    kept.push(known);
                }
                None => {
                    // Gone: the kernel dropped the attachment with the device; release ours.
                    if let Err(error) = program.detach(known.link) {
                        tracing::debug!(interface = %known.name, %error, "detached from a vanished interface");
                    }
                }
            }
        }
        *attached = kept;
        let mut names = Vec::new();
        for (name, index) in present {
            if attached.iter().any(|a| a.index == index) {
                continue;
            }
            match attach(program, &name, self.tcx) {
                Ok(link) => {
                    tracing::info!(interface = %name, "media fast path attached to a new interface");
                    names.push(name.clone());
                    attached.push(Attached { name, index, link });
                }
                Err(error) => {
                    tracing::debug!(interface = %name, %error, "a new interface did not take the media fast path");
                }
            }
        }
        names
    }

    /// A handle on the route map of its own (a duplicated file descriptor).
    fn map_handle(&self) -> Result<MapData, MapError> {
        let fd = self.map.fd().as_fd().try_clone_to_owned()?;
        MapData::from_fd(fd)
    }
}

/// Attaches the classifier at the ingress of `name`: as a TCX link where the kernel has TCX,
/// else through the interface's `clsact` qdisc after removing a previous run's filter.
fn attach(
    program: &mut SchedClassifier,
    name: &str,
    tcx: bool,
) -> Result<SchedClassifierLinkId, ProgramError> {
    if tcx {
        return program.attach_with_options(
            name,
            TcAttachType::Ingress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        );
    }
    // Already present is fine; absent and not addable shows up in the attach below.
    let _ = tc::qdisc_add_clsact(name);
    // Not found is the usual case: nothing left over.
    let _ = tc::qdisc_detach_program(name, TcAttachType::Ingress, PROGRAM);
    program.attach(name, TcAttachType::Ingress)
}

/// Every network interface of the host's namespace, loopback included, with its index (entries
/// without one, such as `bonding_masters`, are not interfaces).
fn interface_names() -> std::io::Result<Vec<(String, u32)>> {
    let mut names: Vec<(String, u32)> = std::fs::read_dir("/sys/class/net")?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let index = std::fs::read_to_string(entry.path().join("ifindex"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some((name, index))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Whether `ip` is an address of this host (a packet to it is delivered, not routed): the
/// kernel path then lets the stack deliver the rewritten packet.
pub(crate) fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of the kernel's `bpf_ktime_get_ns`.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}
