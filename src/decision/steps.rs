//! The steps [`super::decide`] took, with their facts, for `certgate explain`.
//!
//! Recording is opt-in per call: a recorder receives a closure that builds the step, so the
//! proxy's recorder (`()`) never builds one and the keep-alive path allocates nothing for it.

use serde::Serialize;

use crate::directory::Verdict as DirVerdict;

/// Receives the steps of one decision.
pub trait Steps {
    /// Records the step `step` builds, or drops it unbuilt.
    fn record(&mut self, step: impl FnOnce() -> Step);
}

/// Records nothing: the proxy's recorder.
impl Steps for () {
    #[inline(always)]
    fn record(&mut self, _step: impl FnOnce() -> Step) {}
}

/// Records every step, in order: explain's recorder.
impl Steps for Vec<Step> {
    fn record(&mut self, step: impl FnOnce() -> Step) {
        self.push(step());
    }
}

/// One step of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// The location's `ssl_flags` lack `SslNegotiateCert`: no certificate is asked for.
    CertificateNotRequested,
    /// The connection's certificate verdict: `absent`, `rejected` or `valid`.
    Certificate {
        /// The verdict.
        outcome: &'static str,
    },
    /// The IIS mapper chose a user.
    Mapped {
        /// The user.
        user: String,
        /// `one_to_one` or `many_to_one`.
        mapping: &'static str,
    },
    /// A many-to-one Deny mapping matched.
    MapperDenied {
        /// Its name.
        mapping: String,
    },
    /// No IIS mapping matched.
    NoMapping,
    /// The directory answered.
    Directory {
        /// `allow`, `unavailable`, or the deny reason.
        outcome: &'static str,
        /// What it said, for a person.
        answer: String,
    },
    /// The directory would have been asked, but explain was told not to.
    DirectoryNotQueried,
    /// The scope needs a directory and none is configured.
    NoDirectory,
    /// Nothing produced a user; anonymous access decides.
    Anonymous {
        /// `anonymous_authentication` of the location.
        allowed: bool,
    },
}

impl Step {
    /// The directory's answer about `who`.
    pub(super) fn directory(answer: &DirVerdict, who: &str) -> Self {
        let text = match answer {
            DirVerdict::Allow(account) => format!(
                "accepted {} ({} group(s): {})",
                account.dn,
                account.groups.len(),
                account.groups.join("; ")
            ),
            other => format!("refused {who}: {}", other.label()),
        };
        Self::Directory {
            outcome: answer.label(),
            answer: text,
        }
    }
}
