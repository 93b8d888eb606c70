//! A deployment's identity directory, as `nats-identities` keeps it: the seeds (operator,
//! account, system), the revoked user keys, the server configuration and the creds of the
//! project's own processes.

use std::path::{Path, PathBuf};

use nkeys::KeyPair;

use crate::{creds_user_key, user_creds, write_secret, IdentityError, Revocations, Role, Trust};

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

/// The deployment's keys in `dir` (made when missing).
pub fn trust(dir: &Path) -> Result<Trust, IdentityError> {
    let fresh = Trust::generate();
    Ok(Trust {
        operator: keep_seed(dir.join("operator.seed"), &fresh.operator)?,
        account: keep_seed(dir.join("account.seed"), &fresh.account)?,
        system: keep_seed(dir.join("system.seed"), &fresh.system)?,
    })
}

/// The operator JWT kept in `dir/operator.jwt` (signed when missing or not this
/// operator's), so that every later `auth.conf` names the same one and a running server
/// can reload it.
fn keep_operator_jwt(dir: &Path, trust: &Trust) -> Result<String, IdentityError> {
    let path = dir.join("operator.jwt");
    if let Ok(jwt) = std::fs::read_to_string(&path) {
        let jwt = jwt.trim().to_string();
        if crate::jwt_claims(&jwt)
            .ok()
            .and_then(|c| c["sub"].as_str().map(str::to_string))
            == Some(trust.operator.public_key())
        {
            return Ok(jwt);
        }
    }
    let jwt = trust.operator_jwt()?;
    std::fs::write(&path, format!("{jwt}\n")).map_err(|source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(jwt)
}

/// Writes `dir/auth.conf` for the keys and the revocations kept in `dir`. The server reads
/// it; it holds public keys and signed JWTs, no seed.
fn write_server_config(dir: &Path, trust: &Trust) -> Result<PathBuf, IdentityError> {
    let revoked = Revocations::read(&dir.join("revoked"))?;
    let operator = keep_operator_jwt(dir, trust)?;
    let conf = dir.join("auth.conf");
    std::fs::write(&conf, trust.server_config(&operator, &revoked)?).map_err(|source| {
        IdentityError::Io {
            path: conf.display().to_string(),
            source,
        }
    })?;
    Ok(conf)
}

/// Revokes a creds file (or a user's public key) of the deployment in `dir`: the key goes
/// into `dir/revoked` and `dir/auth.conf` is written again. Returns the key and the
/// configuration a nats-server must reload.
pub fn revoke(dir: &Path, what: &str) -> Result<(String, PathBuf), IdentityError> {
    let key = match std::fs::read_to_string(what) {
        Ok(creds) => creds_user_key(&creds)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => what.to_string(),
        Err(source) => {
            return Err(IdentityError::Io {
                path: what.to_string(),
                source,
            })
        }
    };
    let path = dir.join("revoked");
    let mut revoked = Revocations::read(&path)?;
    revoked.revoke(&key)?;
    let trust = trust(dir)?;
    revoked.write(&path)?;
    let conf = write_server_config(dir, &trust)?;
    Ok((key, conf))
}

/// Fills `dir` (mode 0700) with a deployment's keys (kept when present), its server
/// configuration `auth.conf` (returned) and the creds of the control plane, the sandbox and
/// an administrator for subject prefix `prefix`.
pub fn init(dir: &Path, prefix: &str) -> Result<PathBuf, IdentityError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| IdentityError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    let trust = trust(dir)?;
    let conf = write_server_config(dir, &trust)?;
    for role in [Role::ControlPlane, Role::Sandbox, Role::Admin] {
        let path = dir.join(format!("{}.creds", role.name()));
        write_secret(&path, &user_creds(&trust.account, &role, prefix)?)?;
    }
    Ok(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        std::env::temp_dir().join(format!("natsauth-{}", uuid::Uuid::new_v4().simple()))
    }

    fn operator_line(conf: &Path) -> String {
        std::fs::read_to_string(conf)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("operator:"))
            .unwrap()
            .to_string()
    }

    #[test]
    fn the_operator_stays_the_same_across_init_and_revoke_so_a_server_can_reload() {
        let dir = scratch();
        let conf = init(&dir, "cp").unwrap();
        let first = operator_line(&conf);
        assert_eq!(operator_line(&init(&dir, "cp").unwrap()), first);
        let creds = std::fs::read_to_string(dir.join("sandbox.creds")).unwrap();
        let (key, conf) = revoke(&dir, dir.join("sandbox.creds").to_str().unwrap()).unwrap();
        assert_eq!(key, creds_user_key(&creds).unwrap());
        assert_eq!(operator_line(&conf), first);
        assert!(std::fs::read_to_string(&conf)
            .unwrap()
            .contains("resolver_preload"));
        // The revocation is kept, and a later init keeps it in the account.
        let revoked = Revocations::read(&dir.join("revoked")).unwrap();
        assert!(revoked.0.contains_key(&key));
        init(&dir, "cp").unwrap();
        assert_eq!(Revocations::read(&dir.join("revoked")).unwrap(), revoked);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_user_keys_can_be_revoked_and_a_bad_list_is_named() {
        let dir = scratch();
        init(&dir, "cp").unwrap();
        let account = crate::read_account_seed(&dir.join("account.seed")).unwrap();
        assert!(
            revoke(&dir, &account.public_key()).is_err(),
            "an account key"
        );
        assert!(revoke(&dir, "not-a-key").is_err());
        std::fs::write(dir.join("revoked"), "UBAD 12\n").unwrap();
        let error = Revocations::read(&dir.join("revoked"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("'UBAD 12'"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
