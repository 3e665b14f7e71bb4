//! `certgate mapping`: manage IIS certificate mappings the way `New-IISConfigCollectionElement`
//! / `Remove-IISConfigCollectionElement` do, without hand-editing TOML.
//!
//! Every change follows the same safe path: edit the file as written (comments and layout
//! kept, [`document`]), validate the result with the same loader `certgate check` uses (a bad
//! edit is refused with its `file: key: reason` lines and the file is not touched), replace the
//! file atomically ([`write`](mod@write)), then ask the running proxy to reload through the admin listener
//! ([`notify`]), whose own validation is reported back.
//!
//! Exit status: 0 done (and reloaded, or reloading not asked for); 2 the edit was refused;
//! 3 the file was written but the proxy did not take it; 1 anything else.

pub mod document;
pub mod edit;
pub mod list;
pub mod notify;
pub mod table;
pub mod write;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Runtime;
use crate::identity::CertFacts;
use crate::tls::server::ResumptionKeys;
use edit::{Edit, Password, RuleSelect, Select};

/// Arguments of `certgate mapping`.
#[derive(clap::Args, Debug)]
pub struct MappingArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: MappingCommand,
}

/// The file and the scope (IIS: `-PSPath` and `-Location`).
#[derive(clap::Args, Debug, Clone)]
pub struct ScopeArgs {
    /// Configuration file.
    #[arg(short, long, env = "CERTGATE_CONFIG")]
    pub config: PathBuf,
    /// Site name (may be left out when the file has one site).
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// A `[[site.location]]` path of the site with its own mapper section, e.g. `/admin`.
    #[arg(long, value_name = "PATH")]
    pub location: Option<String>,
}

/// How the running proxy learns about the change.
#[derive(clap::Args, Debug, Clone)]
pub struct ReloadArgs {
    /// The admin listener (default: from the file's `[server] admin_listen`).
    #[arg(long, value_name = "URL", conflicts_with = "no_reload")]
    pub admin_url: Option<String>,
    /// Only write the file; do not ask the proxy to reload.
    #[arg(long)]
    pub no_reload: bool,
}

/// Where the mapped account's password comes from (IIS: the mapping's `password`).
#[derive(clap::Args, Debug, Clone)]
#[group(multiple = false)]
pub struct PasswordArgs {
    /// Environment variable of the proxy holding the account's password.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// File holding the account's password.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<String>,
}

impl PasswordArgs {
    fn password(&self) -> Password {
        match (&self.password_env, &self.password_file) {
            (Some(v), _) => Password::Env(v.clone()),
            (None, Some(f)) => Password::File(f.clone()),
            (None, None) => Password::None,
        }
    }
}

/// A one-to-one mapping, by certificate (its collection key) or by account.
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct OneToOneTarget {
    /// The mapped certificate (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The mapped account (must name one mapping).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

/// A one-to-one mapping (`--cert`, `--user`) or a many-to-one mapping (`--name`).
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct AnyTarget {
    /// The certificate of a one-to-one mapping (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The account of a one-to-one mapping.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The name of a many-to-one mapping.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// `certgate mapping` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum MappingCommand {
    /// List every mapping (one-to-one and many-to-one) of every site and location.
    List {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a one-to-one mapping: this certificate logs on as this account.
    Add {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Account (IIS userName), e.g. 'EXAMPLE\alice'.
        #[arg(long, value_name = "USER")]
        user: String,
        /// The user's certificate (PEM or DER); stored as IIS stores it, one-line base64.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        #[command(flatten)]
        password: PasswordArgs,
        /// Add it disabled (enabled = false).
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Remove a one-to-one mapping.
    Remove {
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        target: OneToOneTarget,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Enable a one-to-one (`--cert`/`--user`) or many-to-one (`--name`) mapping.
    Enable {
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        target: AnyTarget,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Disable a one-to-one (`--cert`/`--user`) or many-to-one (`--name`) mapping.
    Disable {
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        target: AnyTarget,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Add a many-to-one mapping (rules come with add-rule).
    AddMany {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Unique name (IIS name).
        #[arg(long)]
        name: String,
        /// Account matching certificates log on as (IIS userName).
        #[arg(long, value_name = "USER")]
        user: String,
        /// Allow, or Deny (403.12) (IIS permissionMode).
        #[arg(long, default_value = "Allow", value_name = "Allow|Deny")]
        permission: String,
        /// Free text (IIS description).
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
        /// Add it disabled (enabled = false).
        #[arg(long)]
        disabled: bool,
        /// Position among the many-to-one mappings (file order is priority; IIS -AtIndex).
        /// Default: last.
        #[arg(long, value_name = "N")]
        at_index: Option<usize>,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Remove a many-to-one mapping with its rules.
    RemoveMany {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The mapping's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Add a rule to a many-to-one mapping (all rules of a mapping must match).
    AddRule {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The many-to-one mapping's name.
        #[arg(long, value_name = "NAME")]
        mapping: String,
        /// Subject or Issuer (IIS certificateField).
        #[arg(long, default_value = "Subject", value_name = "Subject|Issuer")]
        field: String,
        /// CN, OU, O, L, S, C, E, DC, ... or a dotted OID (IIS certificateSubField).
        #[arg(long, value_name = "NAME")]
        sub_field: String,
        /// The value; `*` matches any run of characters (IIS matchCriteria).
        #[arg(long, value_name = "PATTERN")]
        criteria: String,
        /// Compare ignoring case (IIS compareCaseSensitive = False).
        #[arg(long)]
        case_insensitive: bool,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Remove a rule from a many-to-one mapping, by --index or by its values.
    RemoveRule {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The many-to-one mapping's name.
        #[arg(long, value_name = "NAME")]
        mapping: String,
        /// Position of the rule (as `mapping list` shows it).
        #[arg(long, value_name = "N", conflicts_with_all = ["field", "sub_field", "criteria"], required_unless_present = "criteria")]
        index: Option<usize>,
        /// Subject or Issuer.
        #[arg(long, default_value = "Subject", value_name = "Subject|Issuer")]
        field: String,
        /// The rule's sub-field.
        #[arg(long, value_name = "NAME", requires = "criteria")]
        sub_field: Option<String>,
        /// The rule's criteria, exactly.
        #[arg(long, value_name = "PATTERN", requires = "sub_field")]
        criteria: Option<String>,
        #[command(flatten)]
        reload: ReloadArgs,
    },
}

/// Runs a `certgate mapping` command.
pub async fn execute(args: &MappingArgs) -> anyhow::Result<ExitCode> {
    use MappingCommand as C;
    let (scope, reload, edit) = match &args.command {
        C::List { scope, json } => return list_command(scope, *json),
        C::Add {
            scope,
            user,
            cert,
            password,
            disabled,
            reload,
        } => (
            scope,
            reload,
            Edit::AddOneToOne {
                user: user.clone(),
                cert: Box::new(read_certificate(cert)?),
                password: password.password(),
                enabled: !disabled,
            },
        ),
        C::Remove {
            scope,
            target,
            reload,
        } => (
            scope,
            reload,
            Edit::RemoveOneToOne(one_to_one_select(
                target.cert.as_deref(),
                target.user.as_deref(),
            )?),
        ),
        C::Enable {
            scope,
            target,
            reload,
        } => (scope, reload, enable_edit(target, true)?),
        C::Disable {
            scope,
            target,
            reload,
        } => (scope, reload, enable_edit(target, false)?),
        C::AddMany {
            scope,
            name,
            user,
            permission,
            description,
            password,
            disabled,
            at_index,
            reload,
        } => (
            scope,
            reload,
            Edit::AddManyToOne {
                name: name.clone(),
                user: user.clone(),
                permission: permission.clone(),
                description: description.clone(),
                password: password.password(),
                enabled: !disabled,
                at_index: *at_index,
            },
        ),
        C::RemoveMany {
            scope,
            name,
            reload,
        } => (scope, reload, Edit::RemoveManyToOne(name.clone())),
        C::AddRule {
            scope,
            mapping,
            field,
            sub_field,
            criteria,
            case_insensitive,
            reload,
        } => (
            scope,
            reload,
            Edit::AddRule {
                mapping: mapping.clone(),
                field: field.clone(),
                sub_field: sub_field.clone(),
                criteria: criteria.clone(),
                case_sensitive: !case_insensitive,
            },
        ),
        C::RemoveRule {
            scope,
            mapping,
            index,
            field,
            sub_field,
            criteria,
            reload,
        } => {
            let which = match (index, sub_field, criteria) {
                (Some(i), _, _) => RuleSelect::Index(*i),
                (None, Some(sub_field), Some(criteria)) => RuleSelect::Values {
                    field: field.clone(),
                    sub_field: sub_field.clone(),
                    criteria: criteria.clone(),
                },
                _ => anyhow::bail!("name the rule with --index, or --sub-field and --criteria"),
            };
            (
                scope,
                reload,
                Edit::RemoveRule {
                    mapping: mapping.clone(),
                    which,
                },
            )
        }
    };
    change(scope, reload, &edit).await
}

fn enable_edit(target: &AnyTarget, enabled: bool) -> anyhow::Result<Edit> {
    Ok(match &target.name {
        Some(name) => Edit::EnableManyToOne(name.clone(), enabled),
        None => Edit::EnableOneToOne(
            one_to_one_select(target.cert.as_deref(), target.user.as_deref())?,
            enabled,
        ),
    })
}

fn one_to_one_select(cert: Option<&Path>, user: Option<&str>) -> anyhow::Result<Select> {
    match (cert, user) {
        (Some(cert), _) => Ok(Select::Certificate(read_certificate(cert)?.sha256)),
        (None, Some(user)) => Ok(Select::User(user.to_owned())),
        (None, None) => anyhow::bail!("name the mapping with --cert or --user"),
    }
}

/// The leaf certificate of a PEM or DER file.
fn read_certificate(path: &Path) -> anyhow::Result<CertFacts> {
    let certs = crate::tls::load_certificates(path)
        .with_context(|| format!("{}: not a certificate", path.display()))?;
    let first = certs
        .first()
        .with_context(|| format!("{}: holds no certificate", path.display()))?;
    CertFacts::parse(first).with_context(|| format!("{}: not a certificate", path.display()))
}

fn read_config(path: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8(bytes.clone())
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    Ok((bytes, text))
}

fn base_dir(path: &Path) -> PathBuf {
    path.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn list_command(scope: &ScopeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (_, text) = read_config(&scope.config)?;
    let file = scope.config.display().to_string();
    let document = document::parse(&text, &file)?;
    let mut listing = list::collect(
        &document,
        &base_dir(&scope.config),
        scope.site.as_deref(),
        scope.location.as_deref(),
    )?;
    if json {
        listing["config"] = serde_json::Value::from(file);
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print!("{}", list::render_text(&listing));
    }
    Ok(ExitCode::SUCCESS)
}

/// Edit, validate, write, reload.
async fn change(scope: &ScopeArgs, reload: &ReloadArgs, edit: &Edit) -> anyhow::Result<ExitCode> {
    let path = &scope.config;
    let file = path.display().to_string();
    let (original, text) = read_config(path)?;
    let mut document = document::parse(&text, &file)?;
    let target = document::find_scope(&document, scope.site.as_deref(), scope.location.as_deref())?;
    if let Some(change) = table::apply(&document, &target, edit, path)? {
        let table_file = change.path.display().to_string();
        if !change.changed {
            println!("{}; {table_file} is unchanged", change.summary);
            return Ok(ExitCode::SUCCESS);
        }
        let checked = Runtime::from_toml_with_table(
            &text,
            path,
            &ResumptionKeys::default(),
            &change.path,
            change.text.as_bytes(),
        );
        if let Some(code) = refused(checked, &text, path, &table_file) {
            return Ok(code);
        }
        write::replace(&change.path, &change.original, &change.text)?;
        println!("{}", change.summary);
        for note in &change.notes {
            println!("note: {note}");
        }
        println!("{table_file}: written");
        return reload_proxy(&document, reload, &table_file).await;
    }
    let outcome = edit::apply(&mut document, &target, edit, &base_dir(path))?;
    if !outcome.changed {
        println!("{}; {file} is unchanged", outcome.summary);
        return Ok(ExitCode::SUCCESS);
    }
    let edited = document.to_string();
    // Exactly what `certgate check` runs, on the text about to be written.
    let checked = Runtime::from_toml(&edited, path, &ResumptionKeys::default());
    if let Some(code) = refused(checked, &text, path, &file) {
        return Ok(code);
    }
    write::replace(path, &original, &edited)?;
    println!("{}", outcome.summary);
    for note in &outcome.notes {
        println!("note: {note}");
    }
    println!("{file}: written");
    reload_proxy(&document, reload, &file).await
}

/// Prints what validating the edited configuration found; `Some(exit code)` when the edit is
/// refused. Errors the file already had before the edit are marked as such.
fn refused(
    checked: Result<Runtime, crate::config::ConfigErrors>,
    text: &str,
    path: &Path,
    file: &str,
) -> Option<ExitCode> {
    match checked {
        Ok(runtime) => {
            for w in &runtime.warnings {
                println!("warning: {w}");
            }
            None
        }
        Err(errors) => {
            let before: HashSet<String> =
                match Runtime::from_toml(text, path, &ResumptionKeys::default()) {
                    Ok(_) => HashSet::new(),
                    Err(old) => old.0.iter().map(ToString::to_string).collect(),
                };
            for e in &errors.0 {
                let line = e.to_string();
                let note = if before.contains(&line) {
                    " (already in the file before this edit)"
                } else {
                    ""
                };
                eprintln!("error: {line}{note}");
            }
            eprintln!(
                "{file}: {} error(s); the edit was refused and the file is unchanged",
                errors.0.len()
            );
            Some(ExitCode::from(2))
        }
    }
}

/// Asks the running proxy to reload (`file` is what was written, for messages).
async fn reload_proxy(
    document: &toml_edit::DocumentMut,
    reload: &ReloadArgs,
    file: &str,
) -> anyhow::Result<ExitCode> {
    if reload.no_reload {
        println!("not reloaded (--no-reload): send the proxy SIGHUP or POST /reload to apply it");
        return Ok(ExitCode::SUCCESS);
    }
    let url = match &reload.admin_url {
        Some(url) => url.clone(),
        None => {
            let listen = document
                .get("server")
                .and_then(|s| s.get("admin_listen"))
                .and_then(toml_edit::Item::as_str);
            match listen.and_then(notify::admin_url) {
                Some(url) => url,
                None => {
                    println!(
                        "the file has no [server] admin_listen to ask for a reload: send the \
                         proxy SIGHUP (or pass --admin-url)"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    match notify::reload(&url).await {
        notify::Reload::Reloaded { sites } => {
            println!("the running proxy reloaded the configuration ({sites} site(s))");
            Ok(ExitCode::SUCCESS)
        }
        notify::Reload::Rejected(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "the running proxy rejected the configuration and keeps serving the previous one \
                 ({} error(s)); {file} was written",
                errors.len()
            );
            Ok(ExitCode::from(3))
        }
        notify::Reload::Failed(reason) => {
            eprintln!("cannot ask the proxy to reload: {reason}; {file} was written");
            Ok(ExitCode::from(3))
        }
    }
}
