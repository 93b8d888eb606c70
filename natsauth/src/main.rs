//! `nats-identities`: makes a deployment's NATS keys and creds (docs/nats-auth.md).
//!
//!   nats-identities init DIR [PREFIX]
//!       keys (operator, account, system) kept in DIR and reused when present; writes
//!       DIR/auth.conf (include it from nats-server's config) and the creds of the control
//!       plane, the sandbox and an administrator for subject prefix PREFIX (default `cp`).
//!   nats-identities creds controlplane|sandbox|admin ACCOUNT_SEED_FILE PREFIX OUT
//!       one identity's creds for another prefix (e.g. a test's own).
//!
//! Services get theirs from `controlplane service add`, which also records their tenants.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use natsauth::nkeys::KeyPair;
use natsauth::{read_account_seed, user_creds, write_secret, IdentityError, Role, Trust};

const USAGE: &str = "usage: nats-identities init DIR [PREFIX]\n       \
                     nats-identities creds controlplane|sandbox|admin ACCOUNT_SEED_FILE PREFIX OUT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["init", dir] => init(Path::new(dir), "cp"),
        ["init", dir, prefix] => init(Path::new(dir), prefix),
        ["creds", role, seed, prefix, out] => creds(role, Path::new(seed), prefix, Path::new(out)),
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

/// A seed kept in `path`, made when missing.
fn keep_seed(path: PathBuf, fresh: &KeyPair) -> Result<KeyPair, IdentityError> {
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(KeyPair::from_seed(text.trim())?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed = fresh.seed()?;
            write_secret(&path, &format!("{seed}\n"))?;
            Ok(KeyPair::from_seed(&seed)?)
        }
        Err(source) => Err(IdentityError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn init(dir: &Path, prefix: &str) -> Result<(), IdentityError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| IdentityError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    let fresh = Trust::generate();
    let trust = Trust {
        operator: keep_seed(dir.join("operator.seed"), &fresh.operator)?,
        account: keep_seed(dir.join("account.seed"), &fresh.account)?,
        system: keep_seed(dir.join("system.seed"), &fresh.system)?,
    };
    // The server reads auth.conf; it holds public keys and signed JWTs, no seed.
    let conf = dir.join("auth.conf");
    std::fs::write(&conf, trust.server_config()?).map_err(|source| IdentityError::Io {
        path: conf.display().to_string(),
        source,
    })?;
    for role in [Role::ControlPlane, Role::Sandbox, Role::Admin] {
        let path = dir.join(format!("{}.creds", role.name()));
        write_secret(&path, &user_creds(&trust.account, &role, prefix)?)?;
    }
    println!("{}", conf.display());
    Ok(())
}
