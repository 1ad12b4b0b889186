//! The classic pcap file format as the proxy writes it (recordings of raw RTP/RTCP), and the
//! link-layer numbers the writer and the capture reader (`capture`) both speak.

pub mod wire;
pub mod writer;
