//! Sans-IO pool of RTP/RTCP port pairs (RTP on an even port P, RTCP on P + 1).

use crate::media::config::MediaError;

/// The two UDP ports of one media endpoint: RTP on an even port and RTCP right above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortPair {
    /// Even port carrying RTP.
    pub rtp: u16,
    /// Odd port (`rtp + 1`) carrying RTCP.
    pub rtcp: u16,
}

/// Hands out port pairs round-robin from a configured range so that a just-released pair is
/// reused as late as possible (stale packets of an old call then rarely reach a new one).
#[derive(Debug)]
pub struct PortPool {
    /// RTP port of the first pair of the range.
    first_rtp: u16,
    /// One flag per pair: whether it is currently handed out.
    allocated: Vec<bool>,
    /// Index of the pair the next search starts from.
    cursor: usize,
    /// Number of pairs currently handed out.
    pairs_in_use: usize,
}

impl PortPool {
    /// Builds a pool over every even/odd pair that fits inside `[port_min, port_max]`.
    pub fn new(port_min: u16, port_max: u16) -> Result<Self, MediaError> {
        let invalid = MediaError::InvalidPortRange {
            min: port_min,
            max: port_max,
        };
        let first_rtp = if port_min.is_multiple_of(2) {
            port_min
        } else {
            port_min.checked_add(1).ok_or(invalid)?
        };
        // Ports first_rtp..=port_max, two per pair; a lone trailing even port is unusable.
        let span = usize::from(port_max)
            .checked_sub(usize::from(first_rtp))
            .map(|diff| diff + 1)
            .unwrap_or(0);
        let pair_count = span / 2;
        if pair_count == 0 || first_rtp == 0 {
            return Err(MediaError::InvalidPortRange {
                min: port_min,
                max: port_max,
            });
        }
        Ok(Self {
            first_rtp,
            allocated: vec![false; pair_count],
            cursor: 0,
            pairs_in_use: 0,
        })
    }

    /// Number of pairs the range holds.
    pub fn capacity(&self) -> usize {
        self.allocated.len()
    }

    /// Number of pairs currently handed out.
    pub fn pairs_in_use(&self) -> usize {
        self.pairs_in_use
    }

    /// Number of UDP ports currently handed out (two per pair).
    pub fn ports_in_use(&self) -> usize {
        self.pairs_in_use * 2
    }

    /// Takes the next free pair after the previous allocation, wrapping around the range.
    pub fn allocate(&mut self) -> Result<PortPair, MediaError> {
        let count = self.allocated.len();
        for step in 0..count {
            let index = (self.cursor + step) % count;
            if self.allocated.get(index) != Some(&false) {
                continue;
            }
            let Some(pair) = self.pair_at(index) else {
                continue;
            };
            if let Some(slot) = self.allocated.get_mut(index) {
                *slot = true;
            }
            self.pairs_in_use += 1;
            self.cursor = (index + 1) % count;
            return Ok(pair);
        }
        Err(MediaError::PortsExhausted)
    }

    /// Returns a pair to the pool; pairs it never handed out are ignored.
    pub fn release(&mut self, pair: PortPair) {
        let Some(index) = self.index_of(pair.rtp) else {
            return;
        };
        if let Some(slot) = self.allocated.get_mut(index)
            && *slot
        {
            *slot = false;
            self.pairs_in_use -= 1;
        }
    }

    fn pair_at(&self, index: usize) -> Option<PortPair> {
        let offset = u16::try_from(index.checked_mul(2)?).ok()?;
        let rtp = self.first_rtp.checked_add(offset)?;
        Some(PortPair {
            rtp,
            rtcp: rtp.checked_add(1)?,
        })
    }

    fn index_of(&self, rtp: u16) -> Option<usize> {
        let offset = rtp.checked_sub(self.first_rtp)?;
        if !offset.is_multiple_of(2) {
            return None;
        }
        let index = usize::from(offset / 2);
        (index < self.allocated.len()).then_some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_odd_and_inside_the_range() {
        let mut pool = PortPool::new(30001, 30010).unwrap();
        // Even ports 30002..=30008 start pairs whose RTCP stays <= 30010.
        assert_eq!(pool.capacity(), 4);
        let mut seen = Vec::new();
        while let Ok(pair) = pool.allocate() {
            assert_eq!(pair.rtp % 2, 0);
            assert_eq!(pair.rtcp, pair.rtp + 1);
            assert!(pair.rtp >= 30001 && pair.rtcp <= 30010);
            seen.push(pair.rtp);
        }
        assert_eq!(seen, vec![30002, 30004, 30006, 30008]);
    }

    #[test]
    fn exhaustion_is_an_error_and_release_makes_room() {
        let mut pool = PortPool::new(40000, 40003).unwrap();
        let first = pool.allocate().unwrap();
        let second = pool.allocate().unwrap();
        assert_ne!(first, second);
        assert!(matches!(pool.allocate(), Err(MediaError::PortsExhausted)));
        assert_eq!(pool.ports_in_use(), 4);
        pool.release(first);
        assert_eq!(pool.ports_in_use(), 2);
        assert_eq!(pool.allocate().unwrap(), first);
    }

    #[test]
    fn allocation_is_round_robin_and_wraps_around() {
        let mut pool = PortPool::new(50000, 50005).unwrap();
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        pool.release(a);
        // The cursor moves on to the third pair before reusing the released first one.
        assert_eq!(pool.allocate().unwrap().rtp, 50004);
        assert_eq!(pool.allocate().unwrap(), a);
        pool.release(b);
        assert_eq!(pool.allocate().unwrap(), b);
    }

    #[test]
    fn releasing_foreign_or_free_pairs_changes_nothing() {
        let mut pool = PortPool::new(50000, 50003).unwrap();
        let pair = pool.allocate().unwrap();
        pool.release(PortPair {
            rtp: 1234,
            rtcp: 1235,
        });
        pool.release(PortPair {
            rtp: 50001,
            rtcp: 50002,
        });
        pool.release(PortPair {
            rtp: 50002,
            rtcp: 50003,
        });
        assert_eq!(pool.pairs_in_use(), 1);
        pool.release(pair);
        pool.release(pair);
        assert_eq!(pool.pairs_in_use(), 0);
    }

    #[test]
    fn ranges_without_a_pair_are_rejected() {
        assert!(PortPool::new(40001, 40001).is_err());
        assert!(PortPool::new(40000, 40000).is_err());
        assert!(PortPool::new(40002, 40000).is_err());
        assert!(PortPool::new(65535, 65535).is_err());
        assert!(PortPool::new(0, 1).is_err());
        assert_eq!(PortPool::new(65534, 65535).unwrap().capacity(), 1);
    }
}
