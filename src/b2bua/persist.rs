//! Registration bindings outliving the process: the core reports each binding it grants or
//! removes to a [`BindingSink`] (the cluster link writes them to the shared database, off the
//! SIP task), and at start takes back the unexpired ones with [`B2bua::restore_bindings`], so
//! that a call from the PBX to a phone registered before a restart still reaches the phone.

use std::time::Instant;

use crate::sip::transport::Peer;

use super::B2bua;

/// A binding as it is kept outside the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBinding {
    /// The address of record (To of the REGISTER).
    pub aor: String,
    /// The phone's own Contact URI.
    pub contact: String,
    /// Where the phone's REGISTER came from: calls to it go there.
    pub source: Peer,
    /// When the PBX's grant runs out.
    pub expires_at: Instant,
}

/// One change of the registrar's bindings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindingChange {
    /// A binding was granted or refreshed.
    Bound(StoredBinding),
    /// A binding was removed (an unregistration or a refused refresh).
    Removed {
        /// Its address of record.
        aor: String,
        /// Its Contact URI.
        contact: String,
    },
}

/// Where the core reports binding changes. Called on the SIP task: it must never wait (queue
/// the change, or drop it and let the phone's next refresh write it again).
pub trait BindingSink: Send {
    /// One binding changed.
    fn changed(&mut self, change: BindingChange);
}

impl B2bua {
    /// Reports every later binding change to `sink`.
    pub fn set_binding_sink(&mut self, sink: Box<dyn BindingSink>) {
        self.binding_sink = Some(sink);
    }

    /// Takes back bindings kept from an earlier run; expired ones are skipped and no more than
    /// `max_registrations` are kept in all. Returns how many were restored.
    pub fn restore_bindings(&mut self, bindings: Vec<StoredBinding>, now: Instant) -> usize {
        let max = self.cfg.max_registrations;
        self.registrar.restore(bindings, max, now)
    }

    /// Hands `changes` to the sink, if there is one.
    pub(super) fn report_bindings(&mut self, changes: Vec<BindingChange>) {
        if let Some(sink) = self.binding_sink.as_mut() {
            for change in changes {
                sink.changed(change);
            }
        }
    }
}
