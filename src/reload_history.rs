//! The last configuration loads (initial, reloaded, rejected), for the status page.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

/// Reloads remembered.
const RELOADS_KEPT: usize = 20;

/// RFC 3339, seconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// One configuration load.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadEvent {
    /// When it happened, RFC 3339.
    pub time: String,
    /// `initial`, `ok` or `rejected`.
    pub result: &'static str,
    /// Errors in a rejected file (0 otherwise).
    pub errors: usize,
}

/// The last configuration loads, newest last.
#[derive(Debug, Default)]
pub struct ReloadHistory(Mutex<VecDeque<ReloadEvent>>);

impl ReloadHistory {
    /// Records a load.
    pub fn record(&self, result: &'static str, errors: usize) {
        if let Ok(mut h) = self.0.lock() {
            if h.len() == RELOADS_KEPT {
                h.pop_front();
            }
            h.push_back(ReloadEvent {
                time: rfc3339(SystemTime::now()),
                result,
                errors,
            });
        }
    }

    /// Newest first.
    pub fn newest_first(&self) -> Vec<ReloadEvent> {
        self.0
            .lock()
            .map(|h| h.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}
