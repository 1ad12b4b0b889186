//! Why a cluster operation failed. None of these ever stops a call: the caller falls back to
//! what this node knows by itself.

/// A failure of the cluster link: the database or another node could not be reached in time.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No connection to PostgreSQL right now (the link keeps reconnecting by itself).
    #[error("the cluster database is not reachable")]
    Down,
    /// A query failed.
    #[error("cluster database query failed")]
    Query(#[from] tokio_postgres::Error),
    /// A query or a forwarded request took longer than allowed.
    #[error("no answer in time")]
    Timeout,
    /// The cluster secret is not known yet (the database has not been reached since start).
    #[error("the cluster secret is not known yet")]
    NoSecret,
    /// The node that holds the call or recording could not be reached.
    #[error("cannot reach node {node} at {addr}")]
    Connect {
        /// The node's id.
        node: String,
        /// Its API address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP exchange with another node failed.
    #[error("HTTP exchange with another node failed")]
    Http(#[from] hyper::Error),
    /// The forwarded request could not be built (an id that makes no valid URI).
    #[error("cannot build the forwarded request")]
    Build(#[from] hyper::http::Error),
}
