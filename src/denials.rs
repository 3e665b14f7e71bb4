//! The last refused requests, kept in memory for the admin status page.
//!
//! Each entry holds what a helpdesk needs to find a decision (time, site, path, code, the
//! certificate's subject and thumbprint, the reference id) and the leaf certificate's DER, so
//! the status page can re-run `explain` server-side. The DER never leaves the process: pages
//! and JSON show only the subject and thumbprint.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::SystemTime;

use rustls::pki_types::CertificateDer;

use crate::error_page::Reference;

/// Entries kept.
pub const CAPACITY: usize = 200;

/// One refused request.
#[derive(Debug, Clone)]
pub struct Denial {
    /// When it was refused.
    pub time: SystemTime,
    /// The reference id on the page and in the logs.
    pub reference: Reference,
    /// Site name.
    pub site: String,
    /// Host the request named.
    pub host: Option<String>,
    /// Request path as sent (no query).
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// IIS sub-status.
    pub substatus: u16,
    /// Client address.
    pub client_ip: IpAddr,
    /// Certificate subject, IIS display order.
    pub subject: Option<String>,
    /// SHA-1 thumbprint.
    pub thumbprint: Option<String>,
    /// Leaf certificate, for explain (never rendered).
    pub leaf: Option<CertificateDer<'static>>,
}

impl Denial {
    /// `403.7`, or `502` without a sub-status.
    pub fn code(&self) -> String {
        if self.substatus == 0 {
            self.status.to_string()
        } else {
            format!("{}.{}", self.status, self.substatus)
        }
    }
}

/// A bounded ring of the newest denials.
#[derive(Debug, Default)]
pub struct Denials {
    ring: Mutex<VecDeque<Denial>>,
}

impl Denials {
    /// Records a denial, dropping the oldest beyond [`CAPACITY`].
    pub fn record(&self, denial: Denial) {
        if let Ok(mut ring) = self.ring.lock() {
            if ring.len() == CAPACITY {
                ring.pop_front();
            }
            ring.push_back(denial);
        }
    }

    /// The newest `n`, newest first.
    pub fn latest(&self, n: usize) -> Vec<Denial> {
        self.ring
            .lock()
            .map(|ring| ring.iter().rev().take(n).cloned().collect())
            .unwrap_or_default()
    }

    /// The denial with this reference, if still kept.
    pub fn find(&self, reference: Reference) -> Option<Denial> {
        self.ring
            .lock()
            .ok()?
            .iter()
            .rev()
            .find(|d| d.reference == reference)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(path: &str) -> Denial {
        Denial {
            time: SystemTime::now(),
            reference: Reference::new(),
            site: "s".into(),
            host: None,
            path: path.into(),
            status: 403,
            substatus: 7,
            client_ip: IpAddr::from([127, 0, 0, 1]),
            subject: None,
            thumbprint: None,
            leaf: None,
        }
    }

    #[test]
    fn keeps_the_newest_and_finds_by_reference() {
        let ring = Denials::default();
        let first = denial("/0");
        let first_ref = first.reference;
        ring.record(first);
        for i in 1..=CAPACITY {
            ring.record(denial(&format!("/{i}")));
        }
        assert!(ring.find(first_ref).is_none());
        let latest = ring.latest(3);
        assert_eq!(latest[0].path, format!("/{CAPACITY}"));
        assert_eq!(latest.len(), 3);
        let kept = latest[1].reference;
        assert_eq!(
            ring.find(kept).map(|d| d.path),
            Some(latest[1].path.clone())
        );
    }
}
