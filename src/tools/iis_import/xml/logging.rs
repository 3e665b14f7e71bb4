//! `<logFile>` (per site and in `<siteDefaults>`) and `<httpErrors>`: what an IIS administrator's
//! log dashboards and helpdesk pages depend on.

use super::*;

/// `<logFile>` attributes as written (unset ones are `None`, so site values override
/// `<siteDefaults>` key by key, as IIS inherits them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(in crate::tools::iis_import) struct LogFile {
    pub enabled: Option<bool>,
    pub directory: Option<String>,
    pub log_ext_file_flags: Option<String>,
    pub period: Option<String>,
    pub local_time_rollover: Option<bool>,
    /// `logFormat`; only `W3C` (IIS's default) is translated.
    pub log_format: Option<String>,
    pub at: Option<At>,
}

impl LogFile {
    /// `self` over `defaults`, attribute by attribute.
    pub fn over(&self, defaults: Option<&Self>) -> Self {
        let Some(d) = defaults else {
            return self.clone();
        };
        Self {
            enabled: self.enabled.or(d.enabled),
            directory: self.directory.clone().or_else(|| d.directory.clone()),
            log_ext_file_flags: self
                .log_ext_file_flags
                .clone()
                .or_else(|| d.log_ext_file_flags.clone()),
            period: self.period.clone().or_else(|| d.period.clone()),
            local_time_rollover: self.local_time_rollover.or(d.local_time_rollover),
            log_format: self.log_format.clone().or_else(|| d.log_format.clone()),
            at: self.at.clone().or_else(|| d.at.clone()),
        }
    }
}

/// One `<httpErrors><error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::tools::iis_import) struct HttpError {
    pub status_code: u16,
    /// `-1` (IIS: any sub-status) when absent.
    pub sub_status_code: i32,
    pub path: String,
    pub response_mode: Option<String>,
    pub prefix_language_file_path: Option<String>,
    pub at: At,
}

/// `<httpErrors>` at one level.
#[derive(Debug, Clone, Default)]
pub(in crate::tools::iis_import) struct HttpErrorsFragment {
    pub error_mode: Option<String>,
    pub errors: Vec<Op<HttpError>>,
    /// Attributes other than `errorMode` (`existingResponse`, `defaultPath`, ...).
    pub other_attributes: Vec<String>,
}

impl<'input> Reader<'_, 'input> {
    /// `<logFile>` of a `<site>` or of `<siteDefaults>`.
    pub(super) fn log_file(&mut self, node: Node<'_, 'input>) -> Result<LogFile, ImportError> {
        Ok(LogFile {
            enabled: self.bool_attr(node, "enabled")?,
            directory: node.attribute("directory").map(str::to_owned),
            log_ext_file_flags: node.attribute("logExtFileFlags").map(str::to_owned),
            period: node.attribute("period").map(str::to_owned),
            local_time_rollover: self.bool_attr(node, "localTimeRollover")?,
            log_format: node.attribute("logFormat").map(str::to_owned),
            at: Some(self.at(node)),
        })
    }

    /// `<system.webServer><httpErrors>`.
    pub(super) fn http_errors(
        &mut self,
        node: Node<'_, 'input>,
    ) -> Result<HttpErrorsFragment, ImportError> {
        let mut out = HttpErrorsFragment {
            error_mode: node.attribute("errorMode").map(str::to_owned),
            ..HttpErrorsFragment::default()
        };
        for attr in node.attributes() {
            if attr.name() != "errorMode" && !LOCK_ATTRIBUTES.contains(&attr.name()) {
                out.other_attributes.push(attr.name().to_owned());
            }
        }
        for child in elements(node) {
            let status = |reader: &Self| -> Result<(u16, i32), ImportError> {
                let code = child
                    .attribute("statusCode")
                    .and_then(|v| v.trim().parse::<u16>().ok())
                    .filter(|c| (400..=999).contains(c))
                    .ok_or_else(|| {
                        reader.invalid(
                            child,
                            "statusCode must be a number from 400 to 999".to_owned(),
                        )
                    })?;
                let sub = match child.attribute("subStatusCode") {
                    None => -1,
                    Some(v) => v.trim().parse::<i32>().map_err(|_| {
                        reader.invalid(child, format!("subStatusCode '{v}' is not a number"))
                    })?,
                };
                Ok((code, sub))
            };
            match child.tag_name().name() {
                "clear" => out.errors.push(Op::Clear),
                "remove" => {
                    let (code, sub) = status(self)?;
                    out.errors.push(Op::Remove {
                        key: format!("{code}.{sub}"),
                        at: self.at(child),
                    });
                }
                "error" => {
                    let (status_code, sub_status_code) = status(self)?;
                    out.errors.push(Op::Add(HttpError {
                        status_code,
                        sub_status_code,
                        path: child.attribute("path").unwrap_or_default().to_owned(),
                        response_mode: child.attribute("responseMode").map(str::to_owned),
                        prefix_language_file_path: child
                            .attribute("prefixLanguageFilePath")
                            .map(str::to_owned)
                            .filter(|p| !p.is_empty()),
                        at: self.at(child),
                    }));
                }
                _ => {}
            }
        }
        Ok(out)
    }
}
