// SPDX-License-Identifier: GPL-2.0
//
// metaflow-proxy kernel fast path: a TC ingress classifier that forwards the audio of streams
// userspace has latched, without the packet ever reaching a socket.
//
// Userspace (src/media/fastpath) owns the `routes` map: an array indexed by the UDP port a packet
// arrives on (one slot per port: an array lookup is a bounds check and an offset, where a hash
// map cost a bucket walk and its cache misses on every packet). A slot is used when its family
// (FP_V6) is the packet's and its `local_addr` is the packet's destination address (all zero:
// unused); it says which source is accepted there (the leg's latched address: a stranger's
// packet never matches and goes on to the socket, where the latch refuses and counts it), where
// the packet goes (the other leg's address, sent from the proxy's port for that leg, exactly as
// the userspace relay would send it) and which RTP payload type stays in userspace
// (telephone-events, for the DTMF inspector). Everything this program does not take continues up
// the stack unchanged, to the relay's socket.
//
// IPv4 and IPv6 alike: the four addresses of a route are one family (the proxy's media sockets
// are bound to one `media-ip`), IPv4 in the first word of each. IPv6 packets with extension
// headers (fragments among them) stay in the stack, as IPv4 packets with options or fragments.
//
// Forwarding: when the destination is a local address (loopback, a PBX on the same host)
// the rewritten packet simply continues up the stack and is delivered to the receiver's socket.
// Otherwise a FIB lookup gives the egress interface and next hop: the MACs are written and the
// packet redirected (or `bpf_redirect_neigh` when the neighbour is not resolved yet). When the
// lookup fails (forwarding disabled on the interface, no route), the packet is left untouched
// for userspace and counted as declined.
//
// Build: see bpf/build.sh (clang -target bpf); the object is committed so that a machine without
// clang builds the proxy, and CI rebuilds it from this source.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

// The flow carries RTCP: no payload type check.
#define FP_RTCP 1
// The destination is an address of this host: let the stack deliver the rewritten packet.
#define FP_LOCAL 2
// RTP of one SSRC continues a stream a sound played: timestamp offset, SSRC rewritten.
#define FP_SHIFT 4
// The route's addresses are IPv6 (else IPv4, in the first word of each).
#define FP_V6 8
// No telephone-event payload type for this flow.
#define FP_NO_EVENT_PT 0xff
// Not ours: continue with the next classifier, then the stack.
#define PASS TC_ACT_UNSPEC

#define IP_CSUM_OFF (ETH_HLEN + __builtin_offsetof(struct iphdr, check))
// Where the source address starts; destination address and UDP ports follow it contiguously
// (IPv4 without options, IPv6 without extension headers).
#define IP4_SRC_OFF (ETH_HLEN + __builtin_offsetof(struct iphdr, saddr))
#define IP6_SRC_OFF (ETH_HLEN + __builtin_offsetof(struct ipv6hdr, saddr))
#define L4_OFF(v6) (ETH_HLEN + ((v6) ? sizeof(struct ipv6hdr) : sizeof(struct iphdr)))
#define UDP_CSUM_OFF(v6) (L4_OFF(v6) + __builtin_offsetof(struct udphdr, check))
#define RTP_SEQ_OFF(v6) (L4_OFF(v6) + sizeof(struct udphdr) + 2)
#define RTP_TS_OFF(v6) (RTP_SEQ_OFF(v6) + 2)

// What to do with it. Addresses and ports in network byte order. Layout shared with
// src/media/fastpath/route.rs (`Route`): change both together. What every packet reads comes
// first (one cache line); the destination and the counters fill the second.
struct fp_route {
	__u32 local_addr[4];	// the proxy's address packets of the flow arrive on (0: slot unused)
	__u32 peer_addr[4];	// the only source accepted
	__u16 peer_port;
	__u16 out_port;		// the proxy's port towards the destination
	__u16 dst_port;
	__u8 event_pt;		// RTP payload type left to userspace (FP_NO_EVENT_PT: none)
	__u8 flags;		// FP_RTCP, FP_LOCAL, FP_SHIFT, FP_V6
	__u16 seq_add;		// added to RTP sequence numbers (suppression's and stream renumbering)
	__u16 last_seq;		// header of the last RTP packet forwarded, as sent (host order)
	__u32 last_ts;
	__u32 last_ssrc;
	__u32 ts_add;		// FP_SHIFT: added to RTP timestamps (host order)
	__u32 ssrc_in;		// FP_SHIFT: the only SSRC taken (host order); others go to userspace
	__u32 ssrc_out;		// FP_SHIFT: the SSRC written instead (host order)
	__u32 out_addr[4];	// the proxy's address towards the destination
	__u32 dst_addr[4];	// the other leg
	__u64 packets;		// forwarded here
	__u64 bytes;		// UDP payload bytes forwarded here
	__u64 last_ns;		// bpf_ktime_get_ns() of the last one
	__u64 declined;		// matched but left to userspace: no route to the destination
};

// The fixed part of an RTP header.
struct rtp_head {
	__u8 vpxcc;
	__u8 mpt;
	__u16 seq;
	__u32 ts;
	__u32 ssrc;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	// Userspace maps the array to read the counters without a system call.
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct fp_route);
} routes SEC(".maps");

// Renumbers the RTP sequence number by the route's offset; returns the number sent.
static __always_inline int renumber(struct __sk_buff *skb, struct fp_route *r, const int v6,
				    __u16 seq, __u16 *sent)
{
	__u16 out = seq + r->seq_add;
	*sent = out;
	if (!r->seq_add)
		return 0;
	__u16 old_be = bpf_htons(seq), new_be = bpf_htons(out);
	if (bpf_l4_csum_replace(skb, UDP_CSUM_OFF(v6), old_be, new_be, BPF_F_MARK_MANGLED_0 | 2) ||
	    bpf_skb_store_bytes(skb, RTP_SEQ_OFF(v6), &new_be, 2, 0))
		return -1;
	return 0;
}

// Continues the stream a sound played towards the receiver: the timestamp is offset and the
// SSRC replaced (the sequence number went with the renumbering); both words enter the UDP
// checksum. Updates *ts and *ssrc to what is sent.
static __always_inline int shift_stream(struct __sk_buff *skb, struct fp_route *r, const int v6,
					__u32 *ts, __u32 *ssrc)
{
	if (!(r->flags & FP_SHIFT))
		return 0;
	__u32 new_ts = *ts + r->ts_add;
	__u32 old_be[2] = { bpf_htonl(*ts), bpf_htonl(*ssrc) };
	__u32 new_be[2] = { bpf_htonl(new_ts), bpf_htonl(r->ssrc_out) };
	if (bpf_l4_csum_replace(skb, UDP_CSUM_OFF(v6), old_be[0], new_be[0],
				BPF_F_MARK_MANGLED_0 | 4) ||
	    bpf_l4_csum_replace(skb, UDP_CSUM_OFF(v6), old_be[1], new_be[1],
				BPF_F_MARK_MANGLED_0 | 4) ||
	    bpf_skb_store_bytes(skb, RTP_TS_OFF(v6), new_be, sizeof(new_be), 0))
		return -1;
	*ts = new_ts;
	*ssrc = r->ssrc_out;
	return 0;
}

// Counts a forwarded packet and remembers its header (for the relay taking the flow back).
static __always_inline void account(struct fp_route *r, __u64 payload, int is_rtp, __u16 seq,
				    __u32 ts, __u32 ssrc)
{
	__sync_fetch_and_add(&r->packets, 1);
	__sync_fetch_and_add(&r->bytes, payload);
	if (is_rtp) {
		r->last_seq = seq;
		r->last_ts = ts;
		r->last_ssrc = ssrc;
	}
	r->last_ns = bpf_ktime_get_ns();
}

// The addresses and ports of a packet: contiguous in the IP header (without options or
// extension headers) followed by the UDP header, so one store writes them all. IPv4 uses the
// first word of each address.
struct addr_ports4 {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
};

struct addr_ports6 {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
};

// Rewrites addresses and ports and fixes the checksums incrementally: the addresses enter the
// UDP pseudo-header (and, IPv4 only, the IP header checksum) through one checksum difference,
// the ports only the UDP checksum (a 32-bit word replaced). Four or five helper calls; the
// kernel's helpers keep CHECKSUM_PARTIAL (loopback, offload) and CHECKSUM_COMPLETE packets
// consistent. `old` holds the packet's addresses and ports, read before any change (a helper
// that changes the packet invalidates pointers into it).
static __always_inline int rewrite(struct __sk_buff *skb, struct fp_route *r, const int v6,
				   struct addr_ports6 *old)
{
	__u32 old_ports = ((__u32)old->dport << 16) | old->sport;
	__u32 new_ports = ((__u32)r->dst_port << 16) | r->out_port;
	struct addr_ports6 new6 = { .sport = r->out_port, .dport = r->dst_port };
	struct addr_ports4 old4 = {
		.saddr = old->saddr[0], .daddr = old->daddr[0], .sport = old->sport, .dport = old->dport,
	};
	struct addr_ports4 new4 = {
		.saddr = r->out_addr[0], .daddr = r->dst_addr[0], .sport = r->out_port, .dport = r->dst_port,
	};
	__s64 diff;

	if (v6) {
		__builtin_memcpy(new6.saddr, r->out_addr, 16);
		__builtin_memcpy(new6.daddr, r->dst_addr, 16);
		diff = bpf_csum_diff(old->saddr, 32, new6.saddr, 32, 0);
	} else {
		diff = bpf_csum_diff(&old4.saddr, 8, &new4.saddr, 8, 0);
		if (diff >= 0 && bpf_l3_csum_replace(skb, IP_CSUM_OFF, 0, diff, 0))
			return -1;
	}
	if (diff < 0 ||
	    bpf_l4_csum_replace(skb, UDP_CSUM_OFF(v6), 0, diff,
				BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0))
		return -1;
	// With CHECKSUM_COMPLETE the helper takes the address change back out of skb->csum, which
	// is right for IPv4 (the header checksum absorbs it) and wrong for IPv6, which has none: the
	// new addresses and the new UDP checksum cancel out. Put it back (a no-op for any other
	// checksum state; kernels from 6.16 have BPF_F_IPV6 for this, older ones refuse the flag).
	if (v6)
		bpf_csum_update(skb, diff);
	if (bpf_l4_csum_replace(skb, UDP_CSUM_OFF(v6), old_ports, new_ports,
				BPF_F_MARK_MANGLED_0 | 4))
		return -1;
	if (v6)
		return bpf_skb_store_bytes(skb, IP6_SRC_OFF, &new6, sizeof(new6), 0) ? -1 : 0;
	return bpf_skb_store_bytes(skb, IP4_SRC_OFF, &new4, sizeof(new4), 0) ? -1 : 0;
}

// Everything the route changes in a packet it forwards: the RTP sequence number and stream
// shift, then addresses and ports. *sent_seq, *ts and *ssrc become the header as sent.
static __always_inline int edit(struct __sk_buff *skb, struct fp_route *r, const int v6,
				int is_rtp, struct addr_ports6 *old, __u16 seq, __u16 *sent_seq,
				__u32 *ts, __u32 *ssrc)
{
	if (is_rtp && (renumber(skb, r, v6, seq, sent_seq) || shift_stream(skb, r, v6, ts, ssrc)))
		return -1;
	return rewrite(skb, r, v6, old);
}

// Whether two IPv6 addresses (as four words) are equal.
static __always_inline int same6(const __u32 *a, const __u32 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

// The packet's route if the program forwards it: an entry for its destination port, family
// and address, from the latched source; fills `old` with its addresses and ports and `tot_len`
// with its IP length (for the FIB's MTU check).
static __always_inline struct fp_route *match(struct __sk_buff *skb, const int v6,
					      struct addr_ports6 *old, __u16 *tot_len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct udphdr *udp = data + L4_OFF(v6);
	struct fp_route *r;
	__u32 slot;

	if ((void *)(udp + 1) > end)
		return 0;
	slot = bpf_ntohs(udp->dest);
	if (v6) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		if (ip6->nexthdr != IPPROTO_UDP)
			return 0; // extension headers (fragments too) stay in the stack
		if (!udp->check)
			return 0; // no checksum: invalid over IPv6, the stack drops it
		if (bpf_ntohs(ip6->payload_len) > 0xffff - sizeof(struct ipv6hdr))
			return 0; // its length would not fit the FIB lookup's
		r = bpf_map_lookup_elem(&routes, &slot);
		if (!r || !(r->flags & FP_V6) || !same6(r->local_addr, ip6->daddr.in6_u.u6_addr32))
			return 0;
		if (!same6(r->peer_addr, ip6->saddr.in6_u.u6_addr32) || udp->source != r->peer_port)
			return 0; // not the latched source: the socket's latch refuses and counts it
		__builtin_memcpy(old->saddr, ip6->saddr.in6_u.u6_addr32, 16);
		__builtin_memcpy(old->daddr, ip6->daddr.in6_u.u6_addr32, 16);
		*tot_len = bpf_ntohs(ip6->payload_len) + sizeof(struct ipv6hdr);
	} else {
		struct iphdr *ip = data + ETH_HLEN;
		if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
			return 0;
		if (ip->frag_off & bpf_htons(0x3fff))
			return 0; // fragments stay in the stack
		r = bpf_map_lookup_elem(&routes, &slot);
		if (!r || (r->flags & FP_V6) || r->local_addr[0] != ip->daddr)
			return 0;
		if (ip->saddr != r->peer_addr[0] || udp->source != r->peer_port)
			return 0; // not the latched source: the socket's latch refuses and counts it
		old->saddr[0] = ip->saddr;
		old->daddr[0] = ip->daddr;
		*tot_len = bpf_ntohs(ip->tot_len);
	}
	old->sport = udp->source;
	old->dport = udp->dest;
	return r;
}

// Forwards a packet of family `v6` (a constant: each family gets its own copy, with constant
// offsets the verifier checks simply).
static __always_inline int forward(struct __sk_buff *skb, const int v6)
{
	struct addr_ports6 old = {};
	__u16 tot_len = 0;
	struct fp_route *r = match(skb, v6, &old, &tot_len);
	if (!r)
		return PASS;

	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *rtp = data + L4_OFF(v6) + sizeof(struct udphdr);
	__u16 seq = 0;
	__u32 ts = 0, ssrc = 0;
	int is_rtp = !(r->flags & FP_RTCP);
	if (is_rtp) {
		struct rtp_head *h = (void *)rtp;
		if ((void *)(h + 1) > end)
			return PASS;
		if ((h->vpxcc & 0xc0) != 0x80)
			return PASS; // not RTP version 2: userspace decides
		if (r->event_pt != FP_NO_EVENT_PT && (h->mpt & 0x7f) == r->event_pt)
			return PASS; // telephone-event: the DTMF inspector's
		seq = bpf_ntohs(h->seq);
		ts = bpf_ntohl(h->ts);
		ssrc = bpf_ntohl(h->ssrc);
		if ((r->flags & FP_SHIFT) && ssrc != r->ssrc_in)
			return PASS; // a new sender SSRC: userspace computes its shift
	}
	__u32 headers = L4_OFF(v6) + sizeof(struct udphdr);
	__u64 payload = skb->len > headers ? skb->len - headers : 0;
	__u16 sent_seq = seq;

	if (r->flags & FP_LOCAL) {
		// Delivered by the stack to the local receiver's socket.
		if (edit(skb, r, v6, is_rtp, &old, seq, &sent_seq, &ts, &ssrc))
			return TC_ACT_SHOT;
		account(r, payload, is_rtp, sent_seq, ts, ssrc);
		return TC_ACT_OK;
	}

	struct bpf_fib_lookup fib = {};
	fib.l4_protocol = IPPROTO_UDP;
	fib.sport = r->out_port;
	fib.dport = r->dst_port;
	fib.tot_len = tot_len;
	fib.ifindex = skb->ingress_ifindex;
	if (v6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, r->out_addr, 16);
		__builtin_memcpy(fib.ipv6_dst, r->dst_addr, 16);
	} else {
		fib.family = AF_INET;
		fib.ipv4_src = r->out_addr[0];
		fib.ipv4_dst = r->dst_addr[0];
	}
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		__sync_fetch_and_add(&r->declined, 1);
		return PASS;
	}
	if (edit(skb, r, v6, is_rtp, &old, seq, &sent_seq, &ts, &ssrc))
		return TC_ACT_SHOT;
	account(r, payload, is_rtp, sent_seq, ts, ssrc);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib.ifindex, 0, 0, 0);
	if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0))
		return TC_ACT_SHOT;
	return bpf_redirect(fib.ifindex, 0);
}

SEC("classifier")
int mfp_fastpath(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return forward(skb, 0);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return forward(skb, 1);
	return PASS;
}

char LICENSE[] SEC("license") = "GPL";
