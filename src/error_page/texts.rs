//! What a detailed error page says per status and sub-status: which module and step decided,
//! the most likely causes and the things to try. IIS prints the same three parts; the wording
//! here is certgate's own, written for certificate mapping.

/// The module and the step that decided, as the detailed page names them.
pub fn decided_by(status: u16, substatus: u16) -> (&'static str, &'static str) {
    match (status, substatus) {
        (403, 7) => (
            "IIS Web Core (SSL client certificate)",
            "access@sslFlags: SslRequireCert and no certificate was sent",
        ),
        (403, 13 | 16 | 17) => (
            "IIS Web Core (SSL client certificate)",
            "certificate chain check: trust, validity period, revocation",
        ),
        (403, 12) => (
            "IIS Client Certificate Mapping Authentication",
            "mapping: a many-to-one mapping with permissionMode Deny matched",
        ),
        (401, 2) => (
            "IIS Client Certificate Mapping Authentication",
            "mapping: no one-to-one or many-to-one mapping produced a user, and anonymous \
             authentication is disabled",
        ),
        (401, 1) => (
            "Directory account check (LogonUser)",
            "logon: the mapped account cannot log on",
        ),
        (401, 3) => (
            "Directory account check (authorization)",
            "authorization: the account is not in a required group",
        ),
        (503, _) => (
            "Directory account check (LogonUser)",
            "logon: the directory could not be reached",
        ),
        (400, _) | (421, _) => ("certgate request routing", "host and path check"),
        (502 | 504, _) => ("certgate forwarding", "backend request"),
        _ => ("certgate", "request"),
    }
}

/// Most likely causes and things to try.
pub fn advice(status: u16, substatus: u16) -> (&'static [&'static str], &'static [&'static str]) {
    match (status, substatus) {
        (403, 7) => (
            &[
                "The browser or client did not send a client certificate: none is installed, \
                 or the person cancelled the certificate prompt.",
                "The client has certificates, but none issued by a certificate authority this \
                 site trusts, so the client offered none.",
            ],
            &[
                "Install the client certificate issued to you (for example from a .pfx file) \
                 and reload the page; pick it when the browser asks.",
                "Administrators: check that the site's client_ca lists the CA that issues your \
                 users' certificates.",
            ],
        ),
        (403, 13) => (
            &[
                "The certificate is on the issuing CA's certificate revocation list.",
                "No CRL covers the certificate's issuer, or the CRL has expired, so its \
                 revocation status is unknown.",
            ],
            &[
                "Request a new certificate from your certificate authority.",
                "Administrators: check the site's crl files and their nextUpdate; see the \
                 certificate's serial number below in `certgate explain`.",
            ],
        ),
        (403, 16) => (
            &[
                "The certificate was issued by a CA that is not in the site's client_ca.",
                "The certificate is not valid for client authentication (Extended Key Usage), \
                 or its signature or encoding is broken.",
            ],
            &[
                "Use a certificate issued by your organisation's CA for client authentication.",
                "Administrators: compare the certificate's issuer with the site's client_ca.",
            ],
        ),
        (403, 17) => (
            &[
                "The certificate has expired.",
                "The certificate is not valid yet, or the clock of this computer or the \
                 server is wrong.",
            ],
            &[
                "Renew the certificate.",
                "Check the date and time of your computer.",
            ],
        ),
        (403, 12) => (
            &["A many-to-one mapping with permissionMode Deny matches your certificate."],
            &[
                "Ask the site administrator whether your certificate should be allowed.",
                "Administrators: run `certgate explain` with the certificate to see which \
                 mapping denied it.",
            ],
        ),
        (401, 2) => (
            &[
                "The certificate is valid, but no one-to-one mapping holds it and no \
                 many-to-one mapping's rules all match it.",
                "The mapping exists but is disabled, or its family \
                 (one_to_one_certificate_mappings_enabled / \
                 many_to_one_certificate_mappings_enabled) is disabled.",
                "The location's ssl_flags do not ask for a certificate and anonymous \
                 authentication is off.",
            ],
            &[
                "Ask the site administrator to map your certificate to your account \
                 (`certgate mapping add`).",
                "Administrators: `certgate explain --cert` shows every rule with the \
                 certificate's actual values.",
            ],
        ),
        (401, 1) => (
            &[
                "The mapped account does not exist, is disabled, locked out or expired.",
                "The password stored with the mapping no longer matches the account.",
            ],
            &["Ask the site administrator to check the mapped account in the directory."],
        ),
        (401, 3) => (
            &["The account is valid but not a member of a group this location requires."],
            &["Ask the site administrator for access."],
        ),
        (503, _) => (
            &["The directory (Active Directory) that verifies accounts is unreachable."],
            &["Try again in a moment; administrators: check the directory connection."],
        ),
        (400, _) => (
            &["The request path is malformed or ambiguous, or the Host header is missing."],
            &["Check the address you typed."],
        ),
        (421, _) => (
            &["The connection was opened for another site than the request names."],
            &["Open a new connection to the requested host name."],
        ),
        _ => (
            &["The site's application did not answer, or not in time."],
            &["Try again later."],
        ),
    }
}
