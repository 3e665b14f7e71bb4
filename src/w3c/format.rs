//! The bytes IIS writes: file names per rollover period, the `#` header block and entry lines.

use std::fmt::Write as _;
use std::time::SystemTime;

use time::OffsetDateTime;

use super::fields::Field;
use super::{Entry, Period, SiteLog};

/// The `#Software:` line's product (IIS writes `Microsoft Internet Information Services 10.0`).
pub const SOFTWARE: &str = concat!("certgate ", env!("CARGO_PKG_VERSION"));

fn utc(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

/// The log file name for an entry written at `t`: `u_exYYMMDD.log` (daily), `u_exYYMMDDHH.log`
/// (hourly), `u_exYYMMWW.log` (weekly, week of the month starting on Sunday), `u_exYYMM.log`
/// (monthly). `u_` marks UTF-8, as in IIS.
pub fn file_name(period: Period, t: SystemTime) -> String {
    let d = utc(t);
    let yy = d.year().rem_euclid(100);
    let mm = u8::from(d.month());
    match period {
        Period::Daily => format!("u_ex{yy:02}{mm:02}{:02}.log", d.day()),
        Period::Hourly => format!("u_ex{yy:02}{mm:02}{:02}{:02}.log", d.day(), d.hour()),
        Period::Monthly => format!("u_ex{yy:02}{mm:02}.log"),
        Period::Weekly => {
            let first = d.replace_day(1).unwrap_or(d);
            let offset = first.weekday().number_days_from_sunday();
            let week = (d.day() - 1 + offset) / 7 + 1;
            format!("u_ex{yy:02}{mm:02}{week:02}.log")
        }
    }
}

fn date_time(t: SystemTime) -> (String, String) {
    let d = utc(t);
    (
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        format!("{:02}:{:02}:{:02}", d.hour(), d.minute(), d.second()),
    )
}

/// The `#Fields:` value for a site's selection (plus the reference field when configured).
pub fn fields_line(site: &SiteLog) -> String {
    let mut names: Vec<&str> = site.fields.iter().map(|f| f.w3c_name()).collect();
    if site.reference_field {
        names.push(super::REFERENCE_FIELD);
    }
    names.join(" ")
}

/// The header block IIS writes at the top of a file and again after a restart.
pub fn header(site: &SiteLog, t: SystemTime) -> String {
    let (date, time) = date_time(t);
    format!(
        "#Software: {SOFTWARE}\r\n#Version: 1.0\r\n#Date: {date} {time}\r\n#Fields: {}\r\n",
        fields_line(site)
    )
}

/// Appends one value: `-` when empty; spaces become `+` (as IIS does for User-Agent);
/// other whitespace and control characters also become `+` so a hostile value can never
/// split a line or a field.
fn push_value(out: &mut String, value: &str) {
    if value.is_empty() {
        out.push('-');
        return;
    }
    for c in value.chars() {
        if c == ' ' || c.is_whitespace() || c.is_control() {
            out.push('+');
        } else {
            out.push(c);
        }
    }
}

/// One entry line, CRLF-terminated like IIS's.
pub fn line(site: &SiteLog, e: &Entry) -> String {
    let (date, time) = date_time(e.time);
    let mut out = String::with_capacity(256);
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push(' ');
        }
        first = false;
    };
    for field in &site.fields {
        sep(&mut out);
        match field {
            Field::Date => out.push_str(&date),
            Field::Time => out.push_str(&time),
            Field::SiteName => push_value(&mut out, &site.service_name),
            Field::ComputerName => push_value(&mut out, &site.computer_name),
            Field::ServerIp => {
                let _ = write!(out, "{}", e.server.ip());
            }
            Field::Method => push_value(&mut out, &e.method),
            Field::UriStem => push_value(&mut out, &e.uri_stem),
            Field::UriQuery => push_value(&mut out, e.uri_query.as_deref().unwrap_or("")),
            Field::ServerPort => {
                let _ = write!(out, "{}", e.server.port());
            }
            Field::UserName => push_value(&mut out, e.user_name.as_deref().unwrap_or("")),
            Field::ClientIp => {
                let _ = write!(out, "{}", e.client_ip);
            }
            Field::ProtocolVersion => push_value(&mut out, e.version),
            Field::UserAgent => push_value(&mut out, e.user_agent.as_deref().unwrap_or("")),
            Field::Cookie => push_value(&mut out, e.cookie.as_deref().unwrap_or("")),
            Field::Referer => push_value(&mut out, e.referer.as_deref().unwrap_or("")),
            Field::Host => push_value(&mut out, e.host.as_deref().unwrap_or("")),
            Field::HttpStatus => {
                let _ = write!(out, "{}", e.status);
            }
            Field::HttpSubStatus => {
                let _ = write!(out, "{}", e.substatus);
            }
            Field::Win32Status => {
                let _ = write!(out, "{}", e.win32_status);
            }
            Field::BytesSent => {
                let _ = write!(out, "{}", e.bytes_sent);
            }
            Field::BytesRecv => {
                let _ = write!(out, "{}", e.bytes_received);
            }
            Field::TimeTaken => {
                let _ = write!(out, "{}", e.time_taken_ms);
            }
        }
    }
    if site.reference_field {
        sep(&mut out);
        push_value(&mut out, e.reference.as_deref().unwrap_or(""));
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn file_names_follow_iis_periods() {
        // 2026-11-26 14:05:09 UTC, a Thursday; November 1st 2026 is a Sunday.
        let t = at(1_795_701_909);
        assert_eq!(file_name(Period::Daily, t), "u_ex261126.log");
        assert_eq!(file_name(Period::Hourly, t), "u_ex26112614.log");
        assert_eq!(file_name(Period::Monthly, t), "u_ex2611.log");
        assert_eq!(file_name(Period::Weekly, t), "u_ex261104.log");
        assert_eq!(date_time(t), ("2026-11-26".into(), "14:05:09".into()));
    }

    #[test]
    fn values_never_split_a_line() {
        let mut out = String::new();
        push_value(&mut out, "Mozilla/5.0 (X11; Linux)\tx\u{7}");
        assert_eq!(out, "Mozilla/5.0+(X11;+Linux)+x+");
        out.clear();
        push_value(&mut out, "");
        assert_eq!(out, "-");
    }
}
