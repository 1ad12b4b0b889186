//! The two sides of every call, named the way Kazoo names them (`a`, `b`).

/// One of the two legs of a call: `A` sent the INVITE to the proxy, `B` received the proxy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Leg {
    /// The a-leg.
    A,
    /// The b-leg.
    B,
}

impl Leg {
    /// The other leg of the same call.
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    /// Lower-case name used in module data and logs (`"a"` / `"b"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
        }
    }
}
