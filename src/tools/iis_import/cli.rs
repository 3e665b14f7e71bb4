//! The `certgate import-iis` command line: file I/O around [`super::import`].

use std::io::Write;
use std::path::PathBuf;

use super::{ImportError, ImportOptions, WebConfigInput, import, split_web_config_arg, to_toml};

/// Arguments of `certgate import-iis`.
#[derive(clap::Args, Debug, Clone)]
pub struct ImportIisArgs {
    /// IIS applicationHost.config (usually %windir%\System32\inetsrv\config).
    #[arg(value_name = "APPLICATIONHOST_CONFIG")]
    pub app_host: PathBuf,
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
    let app_host = read(&args.app_host)?;
    let mut web_configs = Vec::with_capacity(args.web_configs.len());
    for (arg, file) in args.web_configs.iter().zip(&web_config_files) {
        web_configs.push(WebConfigInput::from_arg(arg, read(file)?)?);
    }
    let opts = ImportOptions {
        app_host_file: args.app_host.display().to_string(),
        sites: args.sites.clone(),
        listen: args.listen.clone(),
        certificate: args.certificate.clone(),
        private_key: args.private_key.clone(),
        pfx: args.pfx.clone(),
        client_ca: args.client_ca.clone(),
        backend: args.backend.clone(),
    };
    let imported = import(&app_host, &web_configs, &opts)?;
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
        let config: RawConfig = toml::from_str(&text).unwrap();
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
