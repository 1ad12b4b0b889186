// SPDX-License-Identifier: GPL-2.0
//
// metaflow-proxy kernel fast path: a TC ingress classifier that forwards the audio of streams
// userspace has latched, without the packet ever reaching a socket.
//
// Userspace (src/media/fastpath) owns the `routes` map: an array indexed by the UDP port a packet
// arrives on (one slot per port: an array lookup is a bounds check and an offset, where a hash
// map cost a bucket walk and its cache misses on every packet). A slot is used when its
// `local_addr` is the packet's destination address (0: unused); it says which source is accepted there (the leg's latched
// address: a stranger's packet never matches and goes on to the socket, where the latch refuses
// and counts it), where the packet goes (the other leg's address, sent from the proxy's port for
// that leg, exactly as the userspace relay would send it) and which RTP payload type stays in
// userspace (telephone-events, for the DTMF inspector). Everything this program does not take
// continues up the stack unchanged, to the relay's socket.
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
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef AF_INET
#define AF_INET 2
#endif

// The flow carries RTCP: no payload type check.
#define FP_RTCP 1
// The destination is an address of this host: let the stack deliver the rewritten packet.
#define FP_LOCAL 2
// RTP of one SSRC continues a stream a sound played: timestamp offset, SSRC rewritten.
#define FP_SHIFT 4
// No telephone-event payload type for this flow.
#define FP_NO_EVENT_PT 0xff
// Not ours: continue with the next classifier, then the stack.
#define PASS TC_ACT_UNSPEC

#define IP_CSUM_OFF (ETH_HLEN + __builtin_offsetof(struct iphdr, check))
#define IP_SRC_OFF (ETH_HLEN + __builtin_offsetof(struct iphdr, saddr))
#define UDP_OFF (ETH_HLEN + sizeof(struct iphdr))
#define UDP_CSUM_OFF (UDP_OFF + __builtin_offsetof(struct udphdr, check))
#define RTP_SEQ_OFF (UDP_OFF + sizeof(struct udphdr) + 2)
#define RTP_TS_OFF (RTP_SEQ_OFF + 2)

// What to do with it. Addresses and ports in network byte order. Layout shared with
// src/media/fastpath/route.rs (`Route`): change both together.
struct fp_route {
	__u32 local_addr;	// the proxy's address packets of the flow arrive on (0: slot unused)
	__u32 peer_addr;	// the only source accepted
	__u16 peer_port;
	__u16 out_port;		// the proxy's port towards the destination
	__u32 out_addr;		// the proxy's address towards the destination
	__u32 dst_addr;		// the other leg
	__u16 dst_port;
	__u8 event_pt;		// RTP payload type left to userspace (FP_NO_EVENT_PT: none)
	__u8 flags;		// FP_RTCP, FP_LOCAL, FP_SHIFT
	__u16 seq_add;		// added to RTP sequence numbers (suppression's and stream renumbering)
	__u16 last_seq;		// header of the last RTP packet forwarded, as sent (host order)
	__u32 last_ts;
	__u32 last_ssrc;
	__u32 ts_add;		// FP_SHIFT: added to RTP timestamps (host order)
	__u64 packets;		// forwarded here
	__u64 bytes;		// UDP payload bytes forwarded here
	__u64 last_ns;		// bpf_ktime_get_ns() of the last one
	__u64 declined;		// matched but left to userspace: no route to the destination
	__u32 ssrc_in;		// FP_SHIFT: the only SSRC taken (host order); others go to userspace
	__u32 ssrc_out;		// FP_SHIFT: the SSRC written instead (host order)
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
static __always_inline int renumber(struct __sk_buff *skb, struct fp_route *r, __u16 seq,
				    __u16 *sent)
{
	__u16 out = seq + r->seq_add;
	*sent = out;
	if (!r->seq_add)
		return 0;
	__u16 old_be = bpf_htons(seq), new_be = bpf_htons(out);
	if (bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_be, new_be, BPF_F_MARK_MANGLED_0 | 2) ||
	    bpf_skb_store_bytes(skb, RTP_SEQ_OFF, &new_be, 2, 0))
		return -1;
	return 0;
}

// Continues the stream a sound played towards the receiver: the timestamp is offset and the
// SSRC replaced (the sequence number went with the renumbering); both words enter the UDP
// checksum. Updates *ts and *ssrc to what is sent.
static __always_inline int shift_stream(struct __sk_buff *skb, struct fp_route *r, __u32 *ts,
					__u32 *ssrc)
{
	if (!(r->flags & FP_SHIFT))
		return 0;
	__u32 new_ts = *ts + r->ts_add;
	__u32 old_be[2] = { bpf_htonl(*ts), bpf_htonl(*ssrc) };
	__u32 new_be[2] = { bpf_htonl(new_ts), bpf_htonl(r->ssrc_out) };
	if (bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_be[0], new_be[0], BPF_F_MARK_MANGLED_0 | 4) ||
	    bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_be[1], new_be[1], BPF_F_MARK_MANGLED_0 | 4) ||
	    bpf_skb_store_bytes(skb, RTP_TS_OFF, new_be, sizeof(new_be), 0))
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

// The addresses and ports a forwarded packet gets: contiguous in an IPv4 header without options
// followed by the UDP header, so one store writes them all.
struct addr_ports {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
};

// Rewrites addresses and ports and fixes both checksums incrementally: the addresses enter the
// IP checksum and the UDP pseudo-header (one checksum difference for both), the ports only the
// UDP checksum (a 32-bit word replaced). Five helper calls; the kernel's helpers keep
// CHECKSUM_PARTIAL (loopback, offload) and CHECKSUM_COMPLETE packets consistent.
static __always_inline int rewrite(struct __sk_buff *skb, struct fp_route *r, __u32 saddr,
				   __u32 daddr, __u16 sport, __u16 dport)
{
	struct addr_ports old = { .saddr = saddr, .daddr = daddr, .sport = sport, .dport = dport };
	struct addr_ports new = {
		.saddr = r->out_addr,
		.daddr = r->dst_addr,
		.sport = r->out_port,
		.dport = r->dst_port,
	};
	__s64 diff = bpf_csum_diff(&old.saddr, 8, &new.saddr, 8, 0);
	__u32 old_ports = ((__u32)dport << 16) | sport;
	__u32 new_ports = ((__u32)new.dport << 16) | new.sport;

	if (diff < 0)
		return -1;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, 0, diff, 0) ||
	    bpf_l4_csum_replace(skb, UDP_CSUM_OFF, 0, diff, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0) ||
	    bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_ports, new_ports, BPF_F_MARK_MANGLED_0 | 4) ||
	    bpf_skb_store_bytes(skb, IP_SRC_OFF, &new, sizeof(new), 0))
		return -1;
	return 0;
}

SEC("classifier")
int mfp_fastpath(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct udphdr *udp = data + UDP_OFF;
	__u8 *rtp = data + UDP_OFF + sizeof(struct udphdr);

	if ((void *)(udp + 1) > end)
		return PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return PASS;
	if (ip->frag_off & bpf_htons(0x3fff))
		return PASS; // fragments stay in the stack
	__u32 slot = bpf_ntohs(udp->dest);
	struct fp_route *r = bpf_map_lookup_elem(&routes, &slot);
	if (!r || r->local_addr != ip->daddr)
		return PASS;
	if (ip->saddr != r->peer_addr || udp->source != r->peer_port)
		return PASS; // not the latched source: the socket's latch refuses and counts it
	if (!(r->flags & FP_RTCP)) {
		if ((void *)(rtp + 2) > end)
			return PASS;
		if ((rtp[0] & 0xc0) != 0x80)
			return PASS; // not RTP version 2: userspace decides
		if (r->event_pt != FP_NO_EVENT_PT && (rtp[1] & 0x7f) == r->event_pt)
			return PASS; // telephone-event: the DTMF inspector's
	}
	__u32 saddr = ip->saddr, daddr = ip->daddr;
	__u16 sport = udp->source, dport = udp->dest;
	__u16 seq = 0;
	__u32 ts = 0, ssrc = 0;
	int is_rtp = !(r->flags & FP_RTCP);
	if (is_rtp) {
		struct rtp_head *h = (void *)rtp;
		if ((void *)(h + 1) > end)
			return PASS;
		seq = bpf_ntohs(h->seq);
		ts = bpf_ntohl(h->ts);
		ssrc = bpf_ntohl(h->ssrc);
		if ((r->flags & FP_SHIFT) && ssrc != r->ssrc_in)
			return PASS; // a new sender SSRC: userspace computes its shift
	}
	__u64 payload = skb->len > UDP_OFF + sizeof(struct udphdr) ?
				skb->len - UDP_OFF - sizeof(struct udphdr) : 0;

	__u16 sent_seq = seq;

	if (r->flags & FP_LOCAL) {
		// Delivered by the stack to the local receiver's socket.
		if ((is_rtp && (renumber(skb, r, seq, &sent_seq) || shift_stream(skb, r, &ts, &ssrc))) ||
		    rewrite(skb, r, saddr, daddr, sport, dport))
			return TC_ACT_SHOT;
		account(r, payload, is_rtp, sent_seq, ts, ssrc);
		return TC_ACT_OK;
	}

	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_UDP;
	fib.sport = r->out_port;
	fib.dport = r->dst_port;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = r->out_addr;
	fib.ipv4_dst = r->dst_addr;
	fib.ifindex = skb->ingress_ifindex;
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		__sync_fetch_and_add(&r->declined, 1);
		return PASS;
	}
	if ((is_rtp && (renumber(skb, r, seq, &sent_seq) || shift_stream(skb, r, &ts, &ssrc))) ||
	    rewrite(skb, r, saddr, daddr, sport, dport))
		return TC_ACT_SHOT;
	account(r, payload, is_rtp, sent_seq, ts, ssrc);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib.ifindex, 0, 0, 0);
	if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0))
		return TC_ACT_SHOT;
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
