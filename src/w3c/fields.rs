//! IIS `logExtFileFlags` names and the W3C field each one writes.
//!
//! IIS writes the selected fields in one fixed order whatever order the flags are listed in,
//! so [`Field::ALL`] is that order and a parsed flag list is sorted into it.

/// One W3C extended field IIS can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// `date` (UTC, `YYYY-MM-DD`).
    Date,
    /// `time` (UTC, `HH:MM:SS`).
    Time,
    /// `s-sitename` (`W3SVC<id>` or the site name).
    SiteName,
    /// `s-computername`.
    ComputerName,
    /// `s-ip`.
    ServerIp,
    /// `cs-method`.
    Method,
    /// `cs-uri-stem`.
    UriStem,
    /// `cs-uri-query`.
    UriQuery,
    /// `s-port`.
    ServerPort,
    /// `cs-username`.
    UserName,
    /// `c-ip`.
    ClientIp,
    /// `cs-version`.
    ProtocolVersion,
    /// `cs(User-Agent)`.
    UserAgent,
    /// `cs(Cookie)`.
    Cookie,
    /// `cs(Referer)`.
    Referer,
    /// `cs-host`.
    Host,
    /// `sc-status`.
    HttpStatus,
    /// `sc-substatus`.
    HttpSubStatus,
    /// `sc-win32-status`.
    Win32Status,
    /// `sc-bytes`.
    BytesSent,
    /// `cs-bytes`.
    BytesRecv,
    /// `time-taken` (milliseconds).
    TimeTaken,
}

/// IIS's default `logExtFileFlags`.
pub const IIS_DEFAULT_FLAGS: &str = "Date, Time, ServerIP, Method, UriStem, UriQuery, ServerPort, \
     UserName, ClientIP, UserAgent, Referer, HttpStatus, HttpSubStatus, Win32Status, TimeTaken";

impl Field {
    /// Every field, in the order IIS writes them.
    pub const ALL: [Self; 22] = [
        Self::Date,
        Self::Time,
        Self::SiteName,
        Self::ComputerName,
        Self::ServerIp,
        Self::Method,
        Self::UriStem,
        Self::UriQuery,
        Self::ServerPort,
        Self::UserName,
        Self::ClientIp,
        Self::ProtocolVersion,
        Self::UserAgent,
        Self::Cookie,
        Self::Referer,
        Self::Host,
        Self::HttpStatus,
        Self::HttpSubStatus,
        Self::Win32Status,
        Self::BytesSent,
        Self::BytesRecv,
        Self::TimeTaken,
    ];

    /// The IIS flag name (`logExtFileFlags`).
    pub fn flag(self) -> &'static str {
        match self {
            Self::Date => "Date",
            Self::Time => "Time",
            Self::SiteName => "SiteName",
            Self::ComputerName => "ComputerName",
            Self::ServerIp => "ServerIP",
            Self::Method => "Method",
            Self::UriStem => "UriStem",
            Self::UriQuery => "UriQuery",
            Self::ServerPort => "ServerPort",
            Self::UserName => "UserName",
            Self::ClientIp => "ClientIP",
            Self::ProtocolVersion => "ProtocolVersion",
            Self::UserAgent => "UserAgent",
            Self::Cookie => "Cookie",
            Self::Referer => "Referer",
            Self::Host => "Host",
            Self::HttpStatus => "HttpStatus",
            Self::HttpSubStatus => "HttpSubStatus",
            Self::Win32Status => "Win32Status",
            Self::BytesSent => "BytesSent",
            Self::BytesRecv => "BytesRecv",
            Self::TimeTaken => "TimeTaken",
        }
    }

    /// The W3C field name in the `#Fields:` line.
    pub fn w3c_name(self) -> &'static str {
        match self {
            Self::Date => "date",
            Self::Time => "time",
            Self::SiteName => "s-sitename",
            Self::ComputerName => "s-computername",
            Self::ServerIp => "s-ip",
            Self::Method => "cs-method",
            Self::UriStem => "cs-uri-stem",
            Self::UriQuery => "cs-uri-query",
            Self::ServerPort => "s-port",
            Self::UserName => "cs-username",
            Self::ClientIp => "c-ip",
            Self::ProtocolVersion => "cs-version",
            Self::UserAgent => "cs(User-Agent)",
            Self::Cookie => "cs(Cookie)",
            Self::Referer => "cs(Referer)",
            Self::Host => "cs-host",
            Self::HttpStatus => "sc-status",
            Self::HttpSubStatus => "sc-substatus",
            Self::Win32Status => "sc-win32-status",
            Self::BytesSent => "sc-bytes",
            Self::BytesRecv => "cs-bytes",
            Self::TimeTaken => "time-taken",
        }
    }

    /// Parses IIS's comma-separated flag list (case-insensitive), in IIS's output order.
    pub fn parse_flags(text: &str) -> Result<Vec<Self>, String> {
        let mut fields = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let field = Self::ALL
                .into_iter()
                .find(|f| f.flag().eq_ignore_ascii_case(part))
                .ok_or_else(|| {
                    let known: Vec<&str> = Self::ALL.iter().map(|f| f.flag()).collect();
                    format!(
                        "unknown IIS log field `{part}` (known: {})",
                        known.join(", ")
                    )
                })?;
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        if fields.is_empty() {
            return Err("no fields are selected".into());
        }
        fields.sort();
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn default_flags_give_iis_default_fields_line() {
        let fields = Field::parse_flags(IIS_DEFAULT_FLAGS).unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f.w3c_name()).collect();
        assert_eq!(
            names.join(" "),
            "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip \
             cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken"
        );
    }

    #[test]
    fn flags_are_sorted_into_iis_order_and_unknown_ones_refused() {
        let fields = Field::parse_flags("timetaken, Date, Host, BytesSent").unwrap();
        assert_eq!(
            fields,
            [Field::Date, Field::Host, Field::BytesSent, Field::TimeTaken]
        );
        assert!(
            Field::parse_flags("Date, Referrer")
                .unwrap_err()
                .contains("Referrer")
        );
        assert!(Field::parse_flags(" , ").is_err());
    }
}
