//! `nats-identities`: makes a deployment's NATS keys and creds (docs/nats-auth.md).
//!
//!   nats-identities init DIR [PREFIX]
//!       keys (operator, account, system) kept in DIR and reused when present; writes
//!       DIR/auth.conf (include it from nats-server's config) and the creds of the control
//!       plane, the sandbox and an administrator for subject prefix PREFIX (default `cp`).
//!   nats-identities creds controlplane|sandbox|admin ACCOUNT_SEED_FILE PREFIX OUT
//!       one identity's creds for another prefix (e.g. a test's own).
//!   nats-identities revoke DIR CREDS_FILE|USER_PUBLIC_KEY
//!       revokes a creds file (a leaked one): its key goes into DIR/revoked and DIR/auth.conf
//!       is written again; a nats-server that reloads it (SIGHUP, or `make services`) refuses
//!       the key and drops its connections. Issue the service new creds with
//!       `controlplane service add`.
//!
//! Services get theirs from `controlplane service add`, which also records their tenants.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use natsauth::{deployment, read_account_seed, user_creds, write_secret, IdentityError, Role};

const USAGE: &str = "usage: nats-identities init DIR [PREFIX]\n       \
                     nats-identities creds controlplane|sandbox|admin ACCOUNT_SEED_FILE PREFIX OUT\n       \
                     nats-identities revoke DIR CREDS_FILE|USER_PUBLIC_KEY";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["init", dir] => init(Path::new(dir), "cp"),
        ["init", dir, prefix] => init(Path::new(dir), prefix),
        ["creds", role, seed, prefix, out] => creds(role, Path::new(seed), prefix, Path::new(out)),
        ["revoke", dir, what] => revoke(Path::new(dir), what),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nats-identities: {error}");
            ExitCode::FAILURE
        }
    }
}

fn role(name: &str) -> Result<Role, IdentityError> {
    match name {
        "controlplane" => Ok(Role::ControlPlane),
        "sandbox" => Ok(Role::Sandbox),
        "admin" => Ok(Role::Admin),
        other => Err(IdentityError::Invalid(format!(
            "unknown identity '{other}' (controlplane, sandbox or admin; services: controlplane service add)"
        ))),
    }
}

fn creds(role_name: &str, seed: &Path, prefix: &str, out: &Path) -> Result<(), IdentityError> {
    let role = role(role_name)?;
    let account = read_account_seed(seed)?;
    write_secret(out, &user_creds(&account, &role, prefix)?)
}

fn revoke(dir: &Path, what: &str) -> Result<(), IdentityError> {
    let (key, conf) = deployment::revoke(dir, what)?;
    println!(
        "revoked {key}; reload nats-server with {} (SIGHUP, or `make services`)",
        conf.display()
    );
    Ok(())
}

fn init(dir: &Path, prefix: &str) -> Result<(), IdentityError> {
    println!("{}", deployment::init(dir, prefix)?.display());
    Ok(())
}
