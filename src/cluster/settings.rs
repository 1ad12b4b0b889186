//! Who this node is to the others: its id, its SIP and API addresses, and the database URL.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{Config, StoreLocation};

/// What the cluster link needs from the configuration, resolved against the bound sockets.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// The PostgreSQL URL (`store`).
    pub url: String,
    /// This node's id (`node-id`, default the advertised SIP address).
    pub node_id: String,
    /// The SIP address other parties reach this node at.
    pub sip_addr: SocketAddr,
    /// The API address the other nodes forward requests to (`api-advertise`, else the bound
    /// `api-listen`).
    pub api_addr: SocketAddr,
    /// The most rows of calls this node keeps in `mfp_live_calls` (`max-calls`).
    pub max_calls: usize,
    /// Where this node's recordings are (`data-dir`).
    pub data_dir: PathBuf,
}

impl ClusterSettings {
    /// The settings when `store` is a PostgreSQL URL; `None` with the embedded store, which
    /// has no cluster. `sip_bound` and `api_bound` are the addresses the sockets got.
    pub fn from_config(
        cfg: &Config,
        sip_bound: SocketAddr,
        api_bound: SocketAddr,
    ) -> Option<ClusterSettings> {
        let StoreLocation::Postgres(url) = &cfg.store else {
            return None;
        };
        let sip_addr = cfg.sip_advertised(sip_bound);
        Some(ClusterSettings {
            url: url.clone(),
            node_id: cfg
                .node_id
                .clone()
                .unwrap_or_else(|| default_node_id(sip_addr)),
            sip_addr,
            api_addr: cfg.api_advertise.unwrap_or(api_bound),
            max_calls: cfg.max_calls,
            data_dir: cfg.data_dir.clone(),
        })
    }
}

/// The node id when none is configured: the advertised SIP address, unique within a cluster
/// because every node behind the dispatcher has its own. An unspecified address (`0.0.0.0`,
/// nothing advertised) would be the same on every node, so the host name stands in for it.
pub fn default_node_id(sip_addr: SocketAddr) -> String {
    if !sip_addr.ip().is_unspecified() {
        return sip_addr.to_string();
    }
    match host_name() {
        Some(host) => format!("{host}:{}", sip_addr.port()),
        None => sip_addr.to_string(),
    }
}

/// This machine's host name, if the kernel tells it.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_postgres_store_makes_a_cluster_and_defaults_follow_the_sockets() {
        let sip: SocketAddr = "10.0.0.11:5060".parse().unwrap();
        let api: SocketAddr = "10.0.0.11:8000".parse().unwrap();
        assert!(ClusterSettings::from_config(&Config::default(), sip, api).is_none());
        let cfg = Config {
            store: StoreLocation::Postgres("postgres://mfp@127.0.0.1/mfp".into()),
            ..Config::default()
        };
        let settings = ClusterSettings::from_config(&cfg, sip, api).unwrap();
        assert_eq!(settings.node_id, "10.0.0.11:5060");
        assert_eq!(settings.api_addr, api);
        let cfg = Config {
            node_id: Some("proxy-a".into()),
            api_advertise: Some("192.0.2.1:9000".parse().unwrap()),
            ..cfg
        };
        let settings = ClusterSettings::from_config(&cfg, sip, api).unwrap();
        assert_eq!(settings.node_id, "proxy-a");
        assert_eq!(settings.api_addr.to_string(), "192.0.2.1:9000");
    }

    #[test]
    fn an_unspecified_sip_address_does_not_make_every_node_the_same() {
        let id = default_node_id("0.0.0.0:5060".parse().unwrap());
        assert!(id.ends_with(":5060"), "{id}");
        if host_name().is_some() {
            assert!(!id.starts_with("0.0.0.0"), "{id}");
        }
    }
}
