//! `aperture token` and `aperture audit`, and the CLI's own audit entries.

use std::process::ExitCode;

use anyhow::Context;
use aperture_catalog::{NewToken, Scope, Token};
use aperture_lake::{AuditVerdict, Lake};

use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and only its hash is kept.
    Create {
        /// Who or what holds it (for people and the audit log).
        #[arg(long)]
        name: String,
        /// Comma-separated: read, search, ingest, admin.
        #[arg(long, default_value = "read,search")]
        scopes: String,
        /// Only these collections (repeat for several). Default: all collections.
        #[arg(long = "collection", value_name = "NAME")]
        collections: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it stops working within seconds, everywhere.
    Revoke {
        /// The token's id (the part after `apt_`), or the whole token.
        id: String,
    },
    /// Change which collections a token may see.
    Grant {
        id: String,
        /// The collections (repeat for several).
        #[arg(
            long = "collection",
            value_name = "NAME",
            required_unless_present = "all"
        )]
        collections: Vec<String>,
        /// Every collection, present and future.
        #[arg(long, conflicts_with = "collections")]
        all: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Check the hash chain from the first entry; name the first bad entry.
    #[arg(long)]
    verify: bool,
    /// With --verify: also check that the log still holds this entry, as printed by an
    /// earlier --verify (`SEQ:HASH`), which catches a log cut short or rewritten whole.
    #[arg(long, value_name = "SEQ:HASH", requires = "verify")]
    head: Option<String>,
    /// Show the last N entries.
    #[arg(long, short = 'n', default_value_t = 50)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

/// Who runs the CLI, for the audit log: the operating system's account of the effective user
/// (`$USER` can say anything), by name, or by number when it has none.
pub fn cli_actor() -> String {
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory of ours.
    let uid = unsafe { libc::geteuid() };
    format!(
        "cli:{}",
        user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
    )
}

fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `getpwuid_r` writes only into `pwd` and `buf` (of the length given); `found`
    // points into them, and is read only while they live.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found);
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// Appends an entry for something the CLI did.
pub async fn record(
    lake: &Lake,
    action: &str,
    target: Option<String>,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    Ok(lake.audit(&cli_actor(), action, target, detail).await?)
}

/// Appends an entry for something the CLI did to one asset: `detail` in the chain, the
/// asset's name beside it, erased with the asset.
pub async fn record_asset(
    lake: &Lake,
    action: &str,
    asset: &aperture_catalog::Asset,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    let entry = aperture_catalog::NewAuditEntry::new(
        cli_actor(),
        action,
        Some(asset.id.to_string()),
        detail,
    )
    .naming(asset.id, serde_json::json!({ "name": asset.name }));
    Ok(lake.record_audit(entry).await?)
}

fn token_id(text: &str) -> &str {
    aperture_catalog::access::split_token(text).map_or(text.trim(), |(id, _)| id)
}

pub async fn token(lake: &Lake, command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create {
            name,
            scopes,
            collections,
            json,
        } => {
            let scopes = Scope::parse_list(&scopes)?;
            let collections = (!collections.is_empty()).then_some(collections);
            let new = NewToken::generate(&name, scopes, collections)?;
            lake.create_token(&cli_actor(), &new).await?;
            if json {
                output::json(&serde_json::json!({ "token": new.text, "info": new.token }))?;
            } else {
                // The token alone on stdout, so scripts can capture it; the rest on stderr.
                println!("{}", new.text);
                eprintln!(
                    "created token {} ({}) with scopes {}; it is shown only now",
                    new.token.id,
                    new.token.name,
                    scope_list(&new.token)
                );
            }
        }
        TokenCommand::List { json } => {
            let tokens = lake.catalog(|c| c.tokens()).await?;
            if json {
                output::json(&tokens)?;
            } else {
                println!(
                    "{:<14} {:<20} {:<24} {:<20} STATE",
                    "ID", "NAME", "SCOPES", "COLLECTIONS"
                );
                for t in &tokens {
                    println!(
                        "{:<14} {:<20} {:<24} {:<20} {}",
                        t.id,
                        output::clip(&t.name, 20),
                        scope_list(t),
                        t.collections
                            .as_ref()
                            .map_or_else(|| "all".to_owned(), |c| c.join(",")),
                        if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let id = token_id(&id).to_owned();
            let key = id.clone();
            let changed = lake.catalog(move |c| c.revoke_token(&key)).await?;
            if changed {
                crate::access::record(
                    lake,
                    "token_revoke",
                    Some(id.clone()),
                    serde_json::json!({}),
                )
                .await?;
                println!("revoked token {id}");
            } else {
                println!("token {id} was already revoked");
            }
        }
        TokenCommand::Grant {
            id,
            collections,
            all,
        } => {
            let id = token_id(&id).to_owned();
            let grant = (!all).then_some(collections);
            let (key, value) = (id.clone(), grant.clone());
            lake.catalog(move |c| c.set_token_collections(&key, value.as_deref()))
                .await?;
            crate::access::record(
                lake,
                "grant_change",
                Some(id.clone()),
                serde_json::json!({ "collections": grant }),
            )
            .await?;
            match grant {
                Some(names) => println!("token {id} now sees: {}", names.join(", ")),
                None => println!("token {id} now sees every collection"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn scope_list(t: &Token) -> String {
    t.scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn audit(lake: &Lake, args: AuditArgs) -> anyhow::Result<ExitCode> {
    if args.verify {
        return verify(lake, args.head.as_deref()).await;
    }
    let tail = lake.audit_tail(args.limit).await?;
    if args.json {
        output::json(&tail)?;
        return Ok(ExitCode::SUCCESS);
    }
    for e in &tail {
        println!(
            "#{:<6} {}  {:<36} {:<16} {:<38} {}",
            e.seq,
            e.at.to_rfc3339(),
            output::clip(&e.actor, 36),
            e.action,
            e.target.as_deref().unwrap_or("-"),
            e.detail
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(lake: &Lake, head: Option<&str>) -> anyhow::Result<ExitCode> {
    let expected = match head {
        Some(text) => {
            let (seq, hash) = text
                .split_once(':')
                .context("--head takes SEQ:HASH, as printed by `aperture audit --verify`")?;
            Some((
                seq.parse::<i64>().context("--head: SEQ is not a number")?,
                hash.to_owned(),
            ))
        }
        None => None,
    };
    match lake.verify_audit(expected).await? {
        AuditVerdict::Intact {
            checked,
            unkeyed,
            erased,
            seq,
            hash,
        } => {
            println!(
                "audit log intact: {} entries, head {seq}:{hash}",
                output::count(checked)
            );
            println!(
                "  keyed with {} ({} entries from before the key, checked unkeyed); {} private details erased with their assets",
                lake.audit_key.fingerprint().unwrap_or_default(),
                output::count(unkeyed),
                output::count(erased)
            );
            println!(
                "(keep the head elsewhere; `aperture audit --verify --head {seq}:{hash}` later proves nothing before it changed)"
            );
            return Ok(ExitCode::SUCCESS);
        }
        AuditVerdict::Broken {
            seq,
            problem,
            checked,
        } => {
            println!("audit log BROKEN at entry #{seq}: {problem}");
            println!("{} entries before it are sound", output::count(checked));
        }
        AuditVerdict::Rewritten { seq } => println!(
            "audit log BROKEN at entry #{seq}: it is not the entry recorded earlier: the log was rewritten"
        ),
        AuditVerdict::CutShort { seq, ends_at } => println!(
            "audit log BROKEN: entry #{seq}, recorded earlier, is gone: the log was cut short (it ends at #{ends_at})"
        ),
    }
    Ok(ExitCode::FAILURE)
}
