//! The open-file limit at start-up: the soft `RLIMIT_NOFILE` is raised to the hard one (the
//! default soft limit of 1024 is far below what a full RTP range needs), and what remains once
//! the RTP range and a reserve are set aside becomes the budget of accepted TCP connections
//! (SIP and API together), so a connection flood cannot take the relay's sockets. See
//! docs/DECISIONS.md, "Connection caps and the fd budget".

use std::io;

/// The soft open-file limit before and after raising it to the hard limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now in force.
    pub now: u64,
    /// The hard limit.
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and reports both.
#[cfg(target_os = "linux")]
pub fn raise_nofile() -> io::Result<NofileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    let hard = limit.rlim_max;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid `rlimit` that outlives the call; only the soft limit moves.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: as above.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(NofileLimit {
        before,
        now: limit.rlim_cur,
        hard,
    })
}

/// Not available here: nothing is raised.
#[cfg(not(target_os = "linux"))]
pub fn raise_nofile() -> io::Result<NofileLimit> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no RLIMIT_NOFILE on this platform",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers_the_limit() {
        let limit = raise_nofile().unwrap();
        assert!(limit.now >= limit.before);
        assert!(limit.now <= limit.hard);
    }
}
