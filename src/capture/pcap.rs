//! Frame reader for classic pcap (both byte orders, µs and ns) and pcapng (SHB/IDB/EPB/SPB and
//! the obsolete packet block), over a byte slice. Never panics on truncated or garbage input:
//! a damaged record ends the iteration with one error.

use crate::capture::CaptureError;

/// One captured frame, borrowed from the capture bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Capture time in µs since the Unix epoch (0 for pcapng simple packet blocks' first use).
    pub ts_us: u64,
    /// LINKTYPE_* of the interface the frame was captured on.
    pub link_type: u16,
    /// Captured bytes (possibly cut at the snap length).
    pub data: &'a [u8],
}

/// How a pcapng interface counts time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TsResolution {
    base2: bool,
    exponent: u8,
}

impl TsResolution {
    const MICROS: TsResolution = TsResolution {
        base2: false,
        exponent: 6,
    };

    fn to_us(self, ticks: u64) -> u64 {
        if self.base2 {
            let us = (u128::from(ticks) * 1_000_000)
                .checked_shr(u32::from(self.exponent))
                .unwrap_or(0);
            return u64::try_from(us).unwrap_or(u64::MAX);
        }
        if self.exponent <= 6 {
            let scale = 10u64.pow(u32::from(6 - self.exponent));
            ticks.saturating_mul(scale)
        } else {
            10u64
                .checked_pow(u32::from(self.exponent - 6))
                .map_or(0, |div| ticks / div)
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u16,
    resolution: TsResolution,
}

#[derive(Debug, Clone)]
enum Format {
    Pcap { nanos: bool, link_type: u16 },
    PcapNg { interfaces: Vec<Interface> },
}

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_OPB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Iterator over the frames of a pcap or pcapng capture.
#[derive(Debug, Clone)]
pub struct FrameReader<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
    format: Format,
    last_ts_us: u64,
    failed: bool,
}

fn read_u16(buf: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let b: [u8; 2] = buf.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

fn read_u32(buf: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

impl<'a> FrameReader<'a> {
    /// Recognises the file format from its magic number and reads the file header.
    pub fn new(buf: &'a [u8]) -> Result<Self, CaptureError> {
        let magic = read_u32(buf, 0, true).ok_or(CaptureError::Truncated { offset: 0 })?;
        let (big_endian, format, pos) = match magic {
            0xA1B2_C3D4 | 0xA1B2_3C4D | 0xD4C3_B2A1 | 0x4D3C_B2A1 => {
                let big_endian = matches!(magic, 0xA1B2_C3D4 | 0xA1B2_3C4D);
                let nanos = matches!(magic, 0xA1B2_3C4D | 0x4D3C_B2A1);
                let link =
                    read_u32(buf, 20, big_endian).ok_or(CaptureError::Truncated { offset: 0 })?;
                let link_type = (link & 0xFFFF) as u16;
                (big_endian, Format::Pcap { nanos, link_type }, 24)
            }
            PCAPNG_SHB => {
                let big_endian = read_u32(buf, 8, true) == Some(PCAPNG_BYTE_ORDER_MAGIC);
                if !big_endian && read_u32(buf, 8, false) != Some(PCAPNG_BYTE_ORDER_MAGIC) {
                    return Err(CaptureError::Malformed {
                        offset: 8,
                        reason: "pcapng byte-order magic",
                    });
                }
                (
                    big_endian,
                    Format::PcapNg {
                        interfaces: Vec::new(),
                    },
                    0,
                )
            }
            other => return Err(CaptureError::UnknownFormat(other)),
        };
        Ok(FrameReader {
            buf,
            pos,
            big_endian,
            format,
            last_ts_us: 0,
            failed: false,
        })
    }

    fn fail(&mut self, err: CaptureError) -> Option<Result<Frame<'a>, CaptureError>> {
        self.failed = true;
        Some(Err(err))
    }

    fn next_pcap(
        &mut self,
        nanos: bool,
        link_type: u16,
    ) -> Option<Result<Frame<'a>, CaptureError>> {
        let at = self.pos;
        let be = self.big_endian;
        let (Some(sec), Some(frac), Some(incl)) = (
            read_u32(self.buf, at, be),
            read_u32(self.buf, at + 4, be),
            read_u32(self.buf, at + 12, be),
        ) else {
            return self.fail(CaptureError::Truncated { offset: at });
        };
        let start = at + 16;
        let Some(data) = start
            .checked_add(incl as usize)
            .and_then(|end| self.buf.get(start..end))
        else {
            return self.fail(CaptureError::Truncated { offset: at });
        };
        self.pos = start + data.len();
        let frac_us = if nanos {
            u64::from(frac) / 1000
        } else {
            u64::from(frac)
        };
        let ts_us = u64::from(sec)
            .saturating_mul(1_000_000)
            .saturating_add(frac_us);
        Some(Ok(Frame {
            ts_us,
            link_type,
            data,
        }))
    }

    /// Reads pcapng blocks until one yields a frame.
    fn next_pcapng(&mut self) -> Option<Result<Frame<'a>, CaptureError>> {
        while self.pos < self.buf.len() {
            let at = self.pos;
            let Some(block_type) = read_u32(self.buf, at, self.big_endian) else {
                return self.fail(CaptureError::Truncated { offset: at });
            };
            if block_type == PCAPNG_SHB {
                // A new section may switch byte order and resets the interface list.
                self.big_endian = read_u32(self.buf, at + 8, true) == Some(PCAPNG_BYTE_ORDER_MAGIC);
                self.format = Format::PcapNg {
                    interfaces: Vec::new(),
                };
            }
            let Some(total_len) = read_u32(self.buf, at + 4, self.big_endian).map(|l| l as usize)
            else {
                return self.fail(CaptureError::Truncated { offset: at });
            };
            let body = (total_len >= 12)
                .then(|| at.checked_add(total_len - 4))
                .flatten()
                .and_then(|end| self.buf.get(at + 8..end));
            let Some(body) = body else {
                return self.fail(CaptureError::Malformed {
                    offset: at,
                    reason: "pcapng block length",
                });
            };
            self.pos = at + total_len;
            match block_type {
                PCAPNG_IDB => self.add_interface(body),
                PCAPNG_EPB | PCAPNG_OPB | PCAPNG_SPB => {
                    if let Some(frame) = self.packet_block(block_type, body) {
                        return Some(Ok(frame));
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn add_interface(&mut self, body: &[u8]) {
        let be = self.big_endian;
        let link_type = read_u16(body, 0, be).unwrap_or(0);
        let mut resolution = TsResolution::MICROS;
        let mut opt = 8usize;
        while let (Some(code), Some(len)) = (read_u16(body, opt, be), read_u16(body, opt + 2, be)) {
            if code == 0 {
                break;
            }
            if code == 9
                && let Some(&v) = body.get(opt + 4)
            {
                resolution = TsResolution {
                    base2: v & 0x80 != 0,
                    exponent: v & 0x7F,
                };
            }
            opt += 4 + usize::from(len).div_ceil(4) * 4;
        }
        if let Format::PcapNg { interfaces } = &mut self.format {
            interfaces.push(Interface {
                link_type,
                resolution,
            });
        }
    }

    fn packet_block(&mut self, block_type: u32, body: &'a [u8]) -> Option<Frame<'a>> {
        let be = self.big_endian;
        let Format::PcapNg { interfaces } = &self.format else {
            return None;
        };
        let (iface_id, ts, data) = match block_type {
            PCAPNG_SPB => {
                let orig = read_u32(body, 0, be)? as usize;
                let data = body.get(4..)?;
                (0, None, data.get(..orig.min(data.len()))?)
            }
            _ => {
                let (iface_id, ts_at) = if block_type == PCAPNG_EPB {
                    (read_u32(body, 0, be)? as usize, 4)
                } else {
                    (usize::from(read_u16(body, 0, be)?), 4)
                };
                let hi = u64::from(read_u32(body, ts_at, be)?);
                let lo = u64::from(read_u32(body, ts_at + 4, be)?);
                let cap_len = read_u32(body, ts_at + 8, be)? as usize;
                let start = ts_at + 16;
                (
                    iface_id,
                    Some((hi << 32) | lo),
                    body.get(start..start.checked_add(cap_len)?)?,
                )
            }
        };
        let iface = interfaces.get(iface_id)?;
        let ts_us = ts.map_or(self.last_ts_us, |t| iface.resolution.to_us(t));
        self.last_ts_us = ts_us;
        Some(Frame {
            ts_us,
            link_type: iface.link_type,
            data,
        })
    }
}

impl<'a> Iterator for FrameReader<'a> {
    type Item = Result<Frame<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        match self.format {
            Format::Pcap { nanos, link_type } => self.next_pcap(nanos, link_type),
            Format::PcapNg { .. } => self.next_pcapng(),
        }
    }
}
