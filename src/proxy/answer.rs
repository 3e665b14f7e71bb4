//! Responses certgate writes itself: IIS status pages and gateway errors.
//!
//! Bodies say what happened and what a person can do, and never carry internal detail (backend
//! addresses, validator messages, directory reasons); those go to the log.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::body::ProxyBody;
use crate::iis::IisStatus;

/// An answer that ends a request before (or instead of) the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An IIS status with sub-status.
    Iis(IisStatus),
    /// The request target cannot be normalised safely.
    BadPath,
    /// The request has no usable Host.
    BadHost,
    /// Host names a site other than the one SNI chose.
    Misdirected,
    /// The backend could not be reached or failed.
    BadGateway,
    /// The backend did not answer in time.
    GatewayTimeout,
}

impl Answer {
    /// The HTTP status and IIS sub-status recorded in the access log.
    pub fn codes(&self) -> (u16, u16) {
        match self {
            Self::Iis(s) => (s.status, s.substatus),
            Self::BadPath | Self::BadHost => (400, 0),
            Self::Misdirected => (421, 0),
            Self::BadGateway => (502, 0),
            Self::GatewayTimeout => (504, 0),
        }
    }

    /// The reason and the hint shown on the page.
    pub fn texts(&self) -> (&'static str, &'static str) {
        match self {
            Self::Iis(s) => (s.reason, s.hint),
            Self::BadPath => (
                "Bad Request",
                "The request path is malformed or ambiguous (double encoding, control characters, \
                 or dot segments that leave the site).",
            ),
            Self::BadHost => ("Bad Request", "The request has no valid Host header."),
            Self::Misdirected => (
                "Misdirected Request",
                "This connection was opened for a different site than the one the request names. \
                 Open a new connection to the requested host name.",
            ),
            Self::BadGateway => (
                "Bad Gateway",
                "The site's application is not reachable right now. Try again later.",
            ),
            Self::GatewayTimeout => (
                "Gateway Timeout",
                "The site's application did not answer in time. Try again later.",
            ),
        }
    }

    /// The HTML response.
    pub fn response(&self) -> Response<ProxyBody> {
        let (status, substatus) = self.codes();
        let (reason, hint) = self.texts();
        let code = if substatus == 0 {
            status.to_string()
        } else {
            format!("{status}.{substatus}")
        };
        let html = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{code} - {reason}</title>\
             </head>\n<body><h1>HTTP Error {code} - {reason}</h1>\n<p>{hint}</p>\n\
             <p><small>certgate</small></p></body></html>\n"
        );
        let mut resp = Response::new(ProxyBody::full(Bytes::from(html)));
        *resp.status_mut() =
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}
