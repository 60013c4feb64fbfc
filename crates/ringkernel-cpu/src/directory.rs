//! The K2K directory: which running kernel owns which inbox — device-side state, like the routing
//! table a GPU keeps in device memory; the host engine never reads it.
//!
//! A handler's K2K send looks the destination up and writes into its inbox while holding the
//! directory's read lock; a terminating or failing kernel removes itself under the write lock
//! before its final drain. So once a kernel has left the directory nobody can still be writing
//! into its inbox, and the final drain (or the host taking back a failed kernel's messages) sees
//! every message ever accepted there. All producers of an inbox are actor threads: host-only
//! producers, for which the inbox's compare-and-swap protocol is safe.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::handler::Destination;
use ringkernel_core::layout::{MESSAGE_HEADER_BYTES, MessageHeader};
use ringkernel_core::message::{check_header, write_slot};
use ringkernel_core::queue::mpsc::InboxSender;
use ringkernel_core::runtime::KernelId;

use crate::device::ActorThread;

/// One running kernel's inbox.
pub(crate) struct Route {
    pub(crate) id: KernelId,
    pub(crate) number: u32,
    pub(crate) sender: InboxSender,
    /// The actor to wake after a send (a polling actor ignores it).
    pub(crate) actor: Arc<ActorThread>,
}

#[derive(Default)]
struct Routes {
    by_number: HashMap<u32, Route>,
    numbers: HashMap<KernelId, u32>,
}

/// Every running kernel of one runtime, by id and by number.
#[derive(Default)]
pub(crate) struct Directory {
    routes: RwLock<Routes>,
}

impl Directory {
    pub(crate) fn insert(&self, route: Route) {
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        routes.numbers.insert(route.id.clone(), route.number);
        routes.by_number.insert(route.number, route);
    }

    /// Removes a kernel; returns once no K2K send into its inbox is in progress. The id's entry
    /// goes only if it still names this kernel: a kernel relaunched under the same id keeps its own.
    pub(crate) fn remove(&self, number: u32) {
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(route) = routes.by_number.remove(&number)
            && routes.numbers.get(&route.id) == Some(&number)
        {
            routes.numbers.remove(&route.id);
        }
    }

    /// Writes one message into the destination kernel's inbox and wakes it.
    ///
    /// # Errors
    /// [`RingKernelError::KernelNotFound`] if no running kernel has that id or number,
    /// [`RingKernelError::InvalidMessage`] if the header or payload is invalid,
    /// [`RingKernelError::QueueFull`] if the inbox is full (nothing is written),
    /// [`RingKernelError::KernelFault`] if the inbox is corrupt.
    pub(crate) fn send(
        &self,
        destination: Destination<'_>,
        source: u32,
        header: &mut MessageHeader,
        payload: &[u8],
    ) -> Result<()> {
        let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
        let number = match destination {
            Destination::Kernel(id) => routes.numbers.get(id).copied(),
            Destination::KernelNumber(number) => Some(number),
            Destination::Host => unreachable!("host deliveries go to the output ring"),
        };
        let Some(route) = number.and_then(|n| routes.by_number.get(&n)) else {
            let requested = match destination {
                Destination::Kernel(id) => id.to_string(),
                _ => format!("#{}", number.unwrap_or_default()),
            };
            let mut running: Vec<String> = routes.numbers.keys().map(KernelId::to_string).collect();
            running.sort();
            return Err(RingKernelError::KernelNotFound {
                requested: format!("{requested} (no running kernel has this id)"),
                registered: running,
            });
        };
        header.dest_kernel = route.number;
        let capacity = route.sender.slot_bytes() - MESSAGE_HEADER_BYTES;
        check_header(header, payload.len(), capacity)?;
        route
            .sender
            .try_push(source, |slot| write_slot(slot, header, payload))
            .map_err(|error| error.into_error(route.id.as_str(), "k2k inbox"))?
            .expect("header and payload size were checked before claiming the slot");
        route.actor.notify();
        Ok(())
    }
}
