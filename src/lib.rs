//! metaflow-proxy: a SIP B2BUA-lite that anchors RTP, decodes RFC 4733 telephone-events in the
//! relay path and runs Kazoo-style metaflows (Konami codes) on live calls.
//!
//! The crate is split by concern, one folder each; `docs/ARCHITECTURE.md` draws the layers. The
//! protocol cores (`sip`, `sdp`, `b2bua`, `dtmf`, `metaflow`, `modules`) are sans-IO state
//! machines: bytes, `now` and a seeded RNG in, actions and timers out. The thin tokio shell lives
//! in `app`, `media` and `api`; `base` holds the words every folder shares.

pub mod api;
pub mod app;
pub mod audio;
pub mod b2bua;
pub mod base;
pub mod capture;
pub mod cluster;
pub mod config;
pub mod connlimit;
pub mod ctl;
pub mod dtmf;
pub mod events;
pub mod media;
pub mod metaflow;
pub mod metrics;
pub mod modules;
pub mod pcap;
pub mod replay;
pub mod rtp;
pub mod sdp;
pub mod sip;
pub mod store;
pub mod webhooks;
