//! The `certgate import-iis` command line: file I/O around [`super::import`].

use std::io::Write;
use std::path::PathBuf;

use super::{
    ImportError, ImportOptions, WebConfigInput, import, netsh, netsh_apply, split_web_config_arg,
    standalone, table, to_toml,
};

/// Arguments of `certgate import-iis`.
#[derive(clap::Args, Debug, Clone)]
pub struct ImportIisArgs {
    /// IIS applicationHost.config (usually %windir%\System32\inetsrv\config); or, with
    /// --site-name, a site's web.config; or a bare `<location>` (or `<system.webServer>`, ...)
    /// fragment as IIS's documentation prints it. May be left out with --netsh.
    #[arg(
        value_name = "APPLICATIONHOST_CONFIG",
        required_unless_present = "netsh"
    )]
    pub app_host: Option<PathBuf>,
    /// The output of `netsh http show sslcert` (English, as Windows prints it): each site's
    /// http.sys binding settings become its [site.revocation]. Alone, every binding becomes a
    /// site.
    #[arg(long, value_name = "FILE")]
    pub netsh: Option<PathBuf>,
    /// The input is this site's web.config (or a fragment of its configuration): import it
    /// without applicationHost.config.
    #[arg(long, value_name = "NAME", requires = "app_host")]
    pub site_name: Option<String>,
    /// Import only this site (repeatable). Default: every site with an https binding.
    #[arg(long = "site", value_name = "NAME")]
    pub sites: Vec<String>,
    /// A web.config and the site path it applies at, e.g. `app/web.config=Contoso/app`
    /// (repeatable).
    #[arg(long = "web-config", value_name = "PATH=SITE/PATH")]
    pub web_configs: Vec<String>,
    /// Address certgate listens on (repeatable). Default: the https bindings' IP:PORT.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// PEM certificate chain for every imported site (IIS keeps it in the Windows store).
    #[arg(long, value_name = "FILE", conflicts_with = "pfx")]
    pub certificate: Option<String>,
    /// PEM private key for every imported site.
    #[arg(long, value_name = "FILE", conflicts_with = "pfx")]
    pub private_key: Option<String>,
    /// PKCS#12 file instead of --certificate and --private-key.
    #[arg(long, value_name = "FILE")]
    pub pfx: Option<String>,
    /// Trust anchor for client certificates (repeatable); IIS uses the machine's Trusted Root
    /// store.
    #[arg(long = "client-ca", value_name = "FILE")]
    pub client_ca: Vec<String>,
    /// Backend base URL for every imported site.
    #[arg(long, value_name = "URL")]
    pub backend: Option<String>,
    /// Write the TOML here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write one-to-one mappings to this CSV mapping table instead of inline TOML (for very
    /// many; a second section's table is FILE-2.csv, and so on).
    #[arg(long = "mappings-file", value_name = "FILE")]
    pub mappings_file: Option<PathBuf>,
}

/// Reads the inputs, imports, writes the TOML and lists warnings and untranslated items on
/// standard error.
pub fn execute(args: &ImportIisArgs) -> Result<(), ImportError> {
    // Check every argument before touching the file system.
    let web_config_files = args
        .web_configs
        .iter()
        .map(|arg| split_web_config_arg(arg).map(|(file, _)| PathBuf::from(file)))
        .collect::<Result<Vec<_>, _>>()?;
    let netsh = match &args.netsh {
        Some(path) => {
            let file = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
                path: file.clone(),
                source,
            })?;
            let text = netsh::decode(&bytes).ok_or_else(|| ImportError::Read {
                path: file.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "neither UTF-8 nor UTF-16 with a byte-order mark",
                ),
            })?;
            Some((netsh::parse(&text, &file)?, file))
        }
        None => None,
    };
    let prepared = match (&args.app_host, &netsh) {
        (Some(app_host), _) => standalone::prepare(
            &read(app_host)?,
            &app_host.display().to_string(),
            args.site_name.as_deref(),
        )?,
        (None, Some((bindings, file))) => netsh_apply::prepare_alone(bindings, file),
        (None, None) => return Err(ImportError::NothingToImport),
    };
    let mut web_configs = prepared.web_configs;
    for (arg, file) in args.web_configs.iter().zip(&web_config_files) {
        web_configs.push(WebConfigInput::from_arg(arg, read(file)?)?);
    }
    let app_host = prepared.app_host;
    let opts = ImportOptions {
        app_host_file: prepared.app_host_file,
        sites: if args.sites.is_empty() {
            prepared.sites
        } else {
            args.sites.clone()
        },
        listen: args.listen.clone(),
        certificate: args.certificate.clone(),
        private_key: args.private_key.clone(),
        pfx: args.pfx.clone(),
        client_ca: args.client_ca.clone(),
        backend: args.backend.clone(),
    };
    let mut imported = import(&app_host, &web_configs, &opts)?;
    imported.warnings.extend(prepared.notes);
    if let Some((bindings, file)) = &netsh {
        netsh_apply::apply(&mut imported, bindings, file, &opts);
    }
    let mut notes = Vec::new();
    match &args.mappings_file {
        Some(file) => {
            let output = args.output.as_deref();
            let value = |table: &std::path::Path| table::table_value(table, output);
            for t in table::move_to_tables(&mut imported.config, file, value) {
                std::fs::write(&t.path, &t.text).map_err(|source| ImportError::Write {
                    path: t.path.display().to_string(),
                    source,
                })?;
                notes.push(format!(
                    "wrote {} one-to-one mappings of {} to {}",
                    t.rows,
                    t.section,
                    t.path.display()
                ));
            }
        }
        None => {
            for section in table::large_sections(&imported.config) {
                imported.warnings.push(format!(
                    "{section}: this many one-to-one mappings load much faster from a mapping \
                     table; re-run with --mappings-file FILE.csv"
                ));
            }
        }
    }
    let text = to_toml(&imported)?;
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| ImportError::Write {
            path: path.display().to_string(),
            source,
        })?,
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|source| ImportError::Write {
                path: "standard output".to_owned(),
                source,
            })?,
    }
    let mut stderr = std::io::stderr().lock();
    // Failing to print a diagnostic must not fail an import whose output was written.
    for w in &imported.warnings {
        let _ = writeln!(stderr, "warning: {}", w.replace('\n', "\n    "));
    }
    for u in &imported.untranslated {
        let _ = writeln!(stderr, "not translated: {u}");
    }
    for n in &notes {
        let _ = writeln!(stderr, "{n}");
    }
    Ok(())
}

fn read(path: &PathBuf) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use clap::Parser;

    use super::*;
    use crate::config::raw::RawConfig;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: ImportIisArgs,
    }

    #[test]
    fn execute_reads_files_and_writes_toml() {
        let dir = tempfile::tempdir().unwrap();
        let app_host = dir.path().join("applicationHost.config");
        std::fs::write(
            &app_host,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/iis/applicationHost.config"
            )),
        )
        .unwrap();
        let web_config = dir.path().join("web.config");
        std::fs::write(
            &web_config,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/iis/contoso-app.web.config"
            )),
        )
        .unwrap();
        let out = dir.path().join("out.toml");
        let cli = Cli::try_parse_from([
            "import-iis".to_owned(),
            app_host.display().to_string(),
            "--site".to_owned(),
            "Contoso Site".to_owned(),
            "--web-config".to_owned(),
            format!("{}=Contoso Site/app", web_config.display()),
            "--backend".to_owned(),
            "http://127.0.0.1:8080".to_owned(),
            "-o".to_owned(),
            out.display().to_string(),
        ])
        .unwrap();
        execute(&cli.args).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        // id, log_file and http_errors are the W3C log and error page keys (see `extras`).
        let config: RawConfig =
            toml::from_str(&super::super::extras::without_extras(&text)).unwrap();
        assert_eq!(config.sites.len(), 1);
        assert_eq!(config.sites[0].backend, "http://127.0.0.1:8080");
        assert!(config.sites[0].locations.iter().any(|l| l.path == "/app"));
    }

    #[test]
    fn execute_reports_missing_files() {
        let cli =
            Cli::try_parse_from(["import-iis", "/nonexistent/applicationHost.config"]).unwrap();
        let err = execute(&cli.args).unwrap_err();
        assert!(matches!(err, ImportError::Read { .. }), "{err}");
    }

    #[test]
    fn pfx_conflicts_with_certificate() {
        let parsed = Cli::try_parse_from([
            "import-iis",
            "a.config",
            "--pfx",
            "x.pfx",
            "--certificate",
            "c.pem",
        ]);
        assert!(parsed.is_err());
    }

    #[test]
    fn bad_web_config_argument_is_rejected() {
        let cli =
            Cli::try_parse_from(["import-iis", "a.config", "--web-config", "web.config"]).unwrap();
        let err = execute(&cli.args).unwrap_err();
        assert!(matches!(err, ImportError::BadWebConfigArg { .. }), "{err}");
        assert!(matches!(
            split_web_config_arg("web.config"),
            Err(ImportError::BadWebConfigArg { .. })
        ));
        assert!(matches!(
            split_web_config_arg("web.config="),
            Err(ImportError::BadWebConfigArg { .. })
        ));
        assert_eq!(
            split_web_config_arg("a/web.config=Site/app").unwrap(),
            ("a/web.config", "Site/app")
        );
    }
}
