//! The text `certgate explain` prints: each step of the decision, then the verdict.

use std::fmt::{self, Write as _};

use super::{Explanation, on_off};

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        match &self.certificate {
            Some(c) => {
                let _ = writeln!(out, "certificate  {}", c.subject);
                let _ = writeln!(out, "  issuer      {}", c.issuer);
                let _ = writeln!(out, "  serial      {}", c.serial);
                let _ = writeln!(out, "  thumbprint  {}", c.thumbprint);
                let _ = writeln!(out, "  valid       {} to {}", c.not_before, c.not_after);
            }
            None => {
                let _ = writeln!(out, "certificate  (none)");
            }
        }
        let _ = writeln!(
            out,
            "site         {} (chosen by {})",
            self.site, self.site_chosen_by
        );
        let _ = writeln!(
            out,
            "path         {} -> location {}",
            self.path, self.location
        );
        let _ = writeln!(
            out,
            "  ssl_flags   {}; anonymous_authentication = {}",
            self.ssl_flags, self.anonymous_authentication
        );
        let _ = write!(out, "chain        {}", self.chain.outcome);
        if let Some(s) = &self.chain.status {
            let _ = write!(out, ": {s}");
        }
        if let Some(d) = &self.chain.detail {
            let _ = write!(out, " ({d})");
        }
        out.push('\n');
        match &self.mapper {
            None => {
                let _ = writeln!(out, "mapper       not consulted");
            }
            Some(m) => {
                let _ = writeln!(
                    out,
                    "mapper       {} (one-to-one {}, many-to-one {})",
                    if m.enabled {
                        "enabled"
                    } else {
                        "disabled: no mapping applies"
                    },
                    on_off(m.one_to_one_enabled),
                    on_off(m.many_to_one_enabled)
                );
                match (&m.one_to_one.hit, &m.one_to_one.user_name) {
                    (Some(source), Some(user)) => {
                        let _ = writeln!(out, "  one-to-one  HIT {source} -> {user}");
                    }
                    _ => {
                        let _ = writeln!(
                            out,
                            "  one-to-one  miss ({} entr{}; none holds this exact certificate)",
                            m.one_to_one.entries,
                            if m.one_to_one.entries == 1 {
                                "y"
                            } else {
                                "ies"
                            }
                        );
                    }
                }
                if m.many_to_one.is_empty() {
                    let _ = writeln!(out, "  many-to-one (no mappings)");
                }
                for t in &m.many_to_one {
                    let state = match (t.skipped, t.selected, t.all_rules_match) {
                        (Some(reason), _, _) => format!("skipped ({reason:?})"),
                        (None, true, _) => "MATCH (decides)".into(),
                        (None, false, true) => "match (an earlier mapping decided)".into(),
                        (None, false, false) => "no match".into(),
                    };
                    let _ = writeln!(
                        out,
                        "  many-to-one [{}] \"{}\" {:?} -> {}: {}",
                        t.index, t.name, t.permission, t.user_name, state
                    );
                    for r in &t.rules {
                        let _ = writeln!(
                            out,
                            "      {} {} {:?} ({}): {} -> {}",
                            r.certificate_field,
                            r.certificate_sub_field,
                            r.match_criteria,
                            if r.compare_case_sensitive {
                                "case-sensitive"
                            } else {
                                "ignore case"
                            },
                            if r.values.is_empty() {
                                "no value".to_owned()
                            } else {
                                format!("{:?}", r.values)
                            },
                            r.reason
                        );
                    }
                }
            }
        }
        if let Some(d) = &self.directory {
            let _ = writeln!(out, "directory    {d}");
            match &self.directory_answer {
                Some(a) => {
                    let _ = writeln!(out, "  answer      {a}");
                }
                None => {
                    let _ = writeln!(out, "  answer      not queried (add --query-directory)");
                }
            }
        }
        if let Some(k) = &self.kerberos {
            let _ = writeln!(out, "kerberos     {k}");
            let answer = self.kerberos_answer.as_deref();
            let answer = answer.unwrap_or("not queried (add --query-directory)");
            let _ = writeln!(out, "  answer      {answer}");
        }
        let _ = writeln!(
            out,
            "result       {} - {}",
            self.verdict.code, self.verdict.summary
        );
        f.write_str(&out)
    }
}
