//! The `certgate` command: parses arguments and wires library pieces together.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};

use certgate::config::Runtime;
use certgate::logging::{self, LogFormat};
use certgate::server::Server;
use certgate::tls::server::ResumptionKeys;

/// glibc's malloc spent about a tenth of the instructions of a proxied keep-alive request
/// (`benches/compare.sh`, callgrind); mimalloc's per-thread free lists make the many small,
/// short-lived allocations of the request path (headers, URIs, futures) much cheaper.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An mTLS reverse proxy with IIS client-certificate mapping.
#[derive(Parser)]
#[command(name = "certgate", version, about, propagate_version = true)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Worker threads (default: the CPUs this process may run on). With one, certgate runs a
    /// single-threaded scheduler, which costs less CPU per request than a one-worker pool.
    #[arg(long, global = true, env = "CERTGATE_WORKER_THREADS")]
    worker_threads: Option<std::num::NonZeroUsize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Run {
        /// Configuration file.
        #[arg(short, long, env = "CERTGATE_CONFIG")]
        config: PathBuf,
        /// How long in-flight requests may take to finish on SIGTERM/SIGINT.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        shutdown_timeout: Duration,
    },
    /// Validate a configuration file completely (files, keys, mappings) and report every error.
    Check {
        /// Configuration file.
        #[arg(short, long, env = "CERTGATE_CONFIG")]
        config: PathBuf,
        /// Then fetch and verify every CRL and OCSP URL the configured client_ca certificates
        /// name (exit status 1 if one fails); CRLs are kept in [revocation] state_dir.
        #[arg(long)]
        online: bool,
    },
    /// Print a certificate (PEM or DER file) as IIS's one-line base64, for one-to-one mappings.
    CertB64 {
        /// Certificate file.
        file: PathBuf,
    },
    /// Start a self-contained demo: throwaway PKI, echo backend and proxy on localhost.
    Demo {
        /// Where to write the demo certificates and config.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// HTTPS port on 127.0.0.1 (0 picks a free port).
        #[arg(long, default_value_t = 8443)]
        port: u16,
    },
    /// Show, step by step, what the proxy would answer a certificate and why.
    Explain {
        /// Configuration file.
        #[arg(short, long, env = "CERTGATE_CONFIG")]
        config: PathBuf,
        /// Client certificate (PEM or DER; a PEM file may add intermediates after the leaf).
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Host name of the request (chooses the site as SNI would).
        #[arg(long, conflicts_with = "site")]
        host: Option<String>,
        /// Site name.
        #[arg(long)]
        site: Option<String>,
        /// Request path.
        #[arg(long, default_value = "/")]
        path: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also run the directory checks against the configured domain controllers.
        #[arg(long)]
        query_directory: bool,
    },
    /// Convert IIS applicationHost.config (and web.config files, `netsh http show sslcert`) into a
    /// certgate config.
    ImportIis(certgate::iis_import::cli::ImportIisArgs),
    /// Manage one-to-one and many-to-one mappings in the configuration, then reload the proxy.
    Mapping(certgate::tools::mapping_cli::MappingArgs),
    /// Load-test any mTLS endpoint: full handshakes, resumed handshakes or keep-alive requests.
    Bench(certgate::bench::BenchArgs),
    /// Exit 0 if the admin endpoint answers /healthz (for container HEALTHCHECKs).
    Healthcheck {
        /// Health URL (the admin listener's /healthz).
        #[arg(
            long,
            env = "CERTGATE_HEALTHCHECK_URL",
            default_value = "http://127.0.0.1:9090/healthz"
        )]
        url: String,
    },
    /// Run the built-in echo backend (reports what it receives as JSON).
    EchoBackend {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Run { config, .. } = &cli.command
        && let Err(e) = certgate::kerberos::process_env::reexec_if_needed(config)
    {
        eprintln!("error: cannot restart with the [kerberos] environment: {e}");
        return ExitCode::FAILURE;
    }
    logging::init(cli.log_format);
    let result = async_runtime(cli.worker_threads)
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(dispatch(cli.command)));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The async runtime: single-threaded when one CPU is available (a taskset or CPU quota of one,
/// the usual container sizing), where a work-stealing pool would only add synchronisation.
fn async_runtime(
    threads: Option<std::num::NonZeroUsize>,
) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, std::num::NonZeroUsize::get);
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            config,
            shutdown_timeout,
        } => run(&config, shutdown_timeout).await,
        Command::Check { config, online } => Ok(check(&config, online).await),
        Command::CertB64 { file } => cert_b64(&file),
        Command::Demo { dir, port } => demo(dir, port).await,
        Command::Explain {
            config,
            cert,
            host,
            site,
            path,
            json,
            query_directory,
        } => {
            let target = certgate::explain::Target {
                host: host.as_deref(),
                site: site.as_deref(),
                path: &path,
            };
            explain(&config, cert.as_deref(), &target, json, query_directory).await
        }
        Command::Bench(args) => {
            let summary = certgate::bench::run(&args).await?;
            if args.json {
                println!("{:#}", summary.to_json());
            } else {
                print!("{summary}");
            }
            Ok(if summary.ok == 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Healthcheck { url } => certgate::admin::healthcheck(&url)
            .await
            .map(|()| ExitCode::SUCCESS)
            .or_else(|e| {
                eprintln!("unhealthy: {e}");
                Ok(ExitCode::FAILURE)
            }),
        Command::Mapping(args) => certgate::tools::mapping_cli::execute(&args).await,
        Command::ImportIis(args) => {
            certgate::iis_import::cli::execute(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::EchoBackend { listen } => {
            let shutdown = tokio_util::sync::CancellationToken::new();
            let addr = certgate::echo::spawn(listen, shutdown.clone())
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            tracing::info!(%addr, "echo backend listening");
            wait_for_stop().await?;
            shutdown.cancel();
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_warnings(runtime: &Runtime) {
    for w in &runtime.warnings {
        tracing::warn!("{w}");
    }
}

async fn run(config: &Path, shutdown_timeout: Duration) -> anyhow::Result<ExitCode> {
    let resumption = Arc::new(ResumptionKeys::default());
    let runtime = match Runtime::load(config, &resumption) {
        Ok(r) => r,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "certgate: configuration rejected ({} error(s))",
                errors.0.len()
            );
            return Ok(ExitCode::from(2));
        }
    };
    print_warnings(&runtime);
    let server = Server::start(runtime, Arc::clone(&resumption)).await?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    {
        let stop = wait_for_stop();
        let watch = server.watch(config.to_owned());
        tokio::pin!(stop, watch);
        loop {
            tokio::select! {
                result = &mut stop => {
                    result?;
                    break;
                }
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    let _ = server.reload(config);
                }
                () = &mut watch => break,
            }
        }
    }
    tracing::info!(
        ?shutdown_timeout,
        "shutting down: finishing in-flight requests"
    );
    server.shutdown(shutdown_timeout).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn check(config: &Path, online: bool) -> ExitCode {
    let resumption = ResumptionKeys::default();
    match Runtime::load(config, &resumption) {
        Ok(runtime) => {
            for w in &runtime.warnings {
                println!("warning: {w}");
            }
            println!(
                "{}: OK ({} site(s), {} listener(s))",
                config.display(),
                runtime.sites.len(),
                runtime.server.listen.len()
            );
            if !online {
                return ExitCode::SUCCESS;
            }
            let report = certgate::tools::check_online::run(&runtime).await;
            print!("{report}");
            if report.failures() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!("{}: {} error(s)", config.display(), errors.0.len());
            ExitCode::from(2)
        }
    }
}

async fn explain(
    config: &Path,
    cert: Option<&Path>,
    target: &certgate::explain::Target<'_>,
    json: bool,
    query_directory: bool,
) -> anyhow::Result<ExitCode> {
    let resumption = ResumptionKeys::default();
    let runtime = match Runtime::load(config, &resumption) {
        Ok(r) => r,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(2));
        }
    };
    let chain = match cert {
        Some(file) => certgate::tls::load_certificates(file)?,
        None => Vec::new(),
    };
    let explanation = if query_directory {
        certgate::explain::explain_with_directory(&runtime, &chain, target).await?
    } else {
        certgate::explain::explain_with_revocation(&runtime, &chain, target).await?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&explanation)?);
    } else {
        print!("{explanation}");
    }
    Ok(ExitCode::SUCCESS)
}

fn cert_b64(file: &Path) -> anyhow::Result<ExitCode> {
    let certs = certgate::tls::load_certificates(file)?;
    let [cert] = certs.as_slice() else {
        anyhow::bail!(
            "{} holds {} certificates; a one-to-one mapping needs exactly one",
            file.display(),
            certs.len()
        );
    };
    let facts = certgate::identity::CertFacts::parse(cert)
        .with_context(|| format!("{} is not a usable certificate", file.display()))?;
    eprintln!(
        "subject: {}\nissuer: {}\nthumbprint: {}",
        facts.subject,
        facts.issuer,
        facts.thumbprint()
    );
    println!("{}", facts.base64_der());
    Ok(ExitCode::SUCCESS)
}

async fn demo(dir: Option<PathBuf>, port: u16) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("certgate-demo"));
    let demo = certgate::demo::Demo::start(&dir, port).await?;
    certgate::demo::print(&demo.instructions());
    wait_for_stop().await?;
    demo.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot watch SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
