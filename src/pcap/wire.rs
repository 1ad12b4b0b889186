//! Numbers of the pcap file format and of the Ethernet, IP and UDP headers a capture wraps
//! around each datagram: read by the capture decoder, written by the recorder's pcap writer.

/// LINKTYPE_ETHERNET: frames start with a 14-byte Ethernet II header.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// EtherType of an IPv4 packet.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of an IPv6 packet.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
