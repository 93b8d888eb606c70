//! Who may say what on NATS (docs/adr/014-nats-identities.md).
//!
//! nats-server runs in operator mode: it trusts one operator, which vouches for one account
//! (the project's), and every client connects as a user whose JWT the account signed. A
//! user's JWT carries its subject permissions, so adding a service needs no server reload:
//! whoever holds the account seed (`controlplane service add`, the test harness) mints it.
//!
//! The identities and what each may do, for a subject prefix `P`:
//! - the control plane: everything, except publishing the sandbox's reports;
//! - the sandbox: publish `P.audit.sandbox`, nothing else;
//! - a service `S`: publish commands on `P.cmd.S.<area>.<verb>` and receive their replies on
//!   its own inbox prefix `P.reply.S`; nothing else. The control plane reads `S` from the
//!   subject, which only `S` may publish on: that is the sender NATS vouches for;
//! - an administrator (operators' tools and the test harness): everything.
//!
//! A leaked creds file is revoked in the account (`nats-identities revoke`, [`Revocations`]):
//! the server refuses the key once it reloads its configuration.
#![forbid(unsafe_code)]

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};

pub use nkeys;

pub mod deployment;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("nkey: {0}")]
    Key(String),
}

impl From<nkeys::error::Error> for IdentityError {
    fn from(error: nkeys::error::Error) -> Self {
        IdentityError::Key(error.to_string())
    }
}

/// Names the control plane keeps for its own identities: no service may take them.
pub const RESERVED_NAMES: [&str; 3] = ["controlplane", "sandbox", "admin"];

/// A service name: one NATS subject token (`[a-z0-9][a-z0-9_-]{0,62}`), not reserved.
pub fn validate_service_name(name: &str) -> Result<(), IdentityError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !first_ok || !rest_ok || name.len() > 63 {
        return Err(IdentityError::Invalid(format!(
            "service name '{name}' must be 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
        )));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(IdentityError::Invalid(format!(
            "service name '{name}' is reserved for the control plane's own identities"
        )));
    }
    Ok(())
}

/// The subjects of the command API, in one place for the listener, the clients and the
/// permissions.
pub mod subjects {
    /// Where service `service` sends `<area>.<verb>`: `P.cmd.<service>.<area>.<verb>`.
    pub fn command(prefix: &str, service: &str, area: &str, verb: &str) -> String {
        format!("{prefix}.cmd.{service}.{area}.{verb}")
    }

    /// What the control plane listens on for one area: `P.cmd.*.<area>.*`.
    pub fn area_listener(prefix: &str, area: &str) -> String {
        format!("{prefix}.cmd.*.{area}.*")
    }

    /// Every command subject service `service` may publish on.
    pub fn service_commands(prefix: &str, service: &str) -> String {
        format!("{prefix}.cmd.{service}.>")
    }

    /// The inbox prefix of an identity (async-nats `custom_inbox_prefix`, nats-py
    /// `inbox_prefix`): `P.reply.<name>`; only that identity may subscribe under it.
    pub fn inbox_prefix(prefix: &str, name: &str) -> String {
        format!("{prefix}.reply.{name}")
    }

    /// Where the sandbox publishes its run reports.
    pub fn sandbox_reports(prefix: &str) -> String {
        format!("{prefix}.audit.sandbox")
    }

    /// The sending service and the verb of a command subject `P.cmd.<service>.<area>.<verb>`
    /// (`None` for any other shape).
    pub fn sender_and_verb<'a>(prefix: &str, subject: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = subject.strip_prefix(prefix)?.strip_prefix(".cmd.")?;
        let mut tokens = rest.split('.');
        let (service, _area, verb) = (tokens.next()?, tokens.next()?, tokens.next()?);
        if tokens.next().is_some() || service.is_empty() || verb.is_empty() {
            return None;
        }
        Some((service, verb))
    }
}

/// One identity of a deployment (its subject prefix given separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    ControlPlane,
    Sandbox,
    Service(String),
    Admin,
}

impl Role {
    /// The user name in its JWT (what server logs and `connz` show).
    pub fn name(&self) -> &str {
        match self {
            Role::ControlPlane => "controlplane",
            Role::Sandbox => "sandbox",
            Role::Service(name) => name,
            Role::Admin => "admin",
        }
    }

    /// The JWT's `pub`/`sub` permissions for subject prefix `prefix` (`None`: unrestricted).
    pub fn permissions(&self, prefix: &str) -> Option<Value> {
        match self {
            // Replies go to every service's inbox and requeued dead letters to any subject
            // an operator names, so the control plane may publish widely; never a sandbox
            // report (only the sandbox vouches for those) nor on the system account's subjects.
            Role::ControlPlane => Some(json!({
                "pub": {"allow": [">"], "deny": [subjects::sandbox_reports(prefix), "$SYS.>"]},
                "sub": {"allow": [">"]},
            })),
            Role::Sandbox => Some(json!({
                "pub": {"allow": [subjects::sandbox_reports(prefix)]},
                "sub": {"allow": [format!("{}.>", subjects::inbox_prefix(prefix, "sandbox"))]},
            })),
            Role::Service(name) => Some(json!({
                "pub": {"allow": [subjects::service_commands(prefix, name)]},
                "sub": {"allow": [format!("{}.>", subjects::inbox_prefix(prefix, name))]},
            })),
            Role::Admin => None,
        }
    }
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON values serialise"))
}

/// A NATS JWT (v2, ed25519-nkey) with `claims`, signed by `issuer`.
fn sign_jwt(issuer: &KeyPair, mut claims: Value) -> Result<String, IdentityError> {
    claims["jti"] = json!(uuid::Uuid::new_v4().simple().to_string().to_uppercase());
    claims["iat"] = json!(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0));
    claims["iss"] = json!(issuer.public_key());
    let header = encode(&json!({"typ": "JWT", "alg": "ed25519-nkey"}));
    let body = format!("{header}.{}", encode(&claims));
    let signature = issuer.sign(body.as_bytes())?;
    Ok(format!("{body}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// A user JWT for `role` under `prefix`, signed by `account`; and its creds file text.
pub fn user_creds(account: &KeyPair, role: &Role, prefix: &str) -> Result<String, IdentityError> {
    let user = KeyPair::new_user();
    let mut nats = json!({
        "type": "user", "version": 2,
        "subs": -1, "data": -1, "payload": -1,
    });
    if let Some(permissions) = role.permissions(prefix) {
        nats["pub"] = permissions["pub"].clone();
        nats["sub"] = permissions["sub"].clone();
    }
    let jwt = sign_jwt(
        account,
        json!({"name": role.name(), "sub": user.public_key(), "nats": nats}),
    )?;
    Ok(creds_text(&jwt, &user.seed()?))
}

/// The creds file format nats-server's tools write (and async-nats and nats-py read).
fn creds_text(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// The claims of the user JWT in a creds file.
fn creds_claims(creds: &str) -> Result<Value, IdentityError> {
    let jwt = creds
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("eyJ"))
        .ok_or_else(|| IdentityError::Invalid("no user JWT in the creds file".into()))?;
    jwt_claims(jwt)
}

/// The claims of a JWT (not verified: for reading what a file of ours says).
pub(crate) fn jwt_claims(jwt: &str) -> Result<Value, IdentityError> {
    jwt.split('.')
        .nth(1)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
        .ok_or_else(|| IdentityError::Invalid("the JWT is malformed".into()))
}

/// The name claim of the user JWT in a creds file (which identity the file is).
pub fn creds_name(creds: &str) -> Result<String, IdentityError> {
    creds_claims(creds)?["name"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| IdentityError::Invalid("the creds file's JWT has no name".into()))
}

/// The user's public key in a creds file (what a revocation names).
pub fn creds_user_key(creds: &str) -> Result<String, IdentityError> {
    creds_claims(creds)?["sub"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| IdentityError::Invalid("the creds file's JWT has no subject".into()))
}

/// Reads an account seed (`SA…`) from a file.
pub fn read_account_seed(path: &Path) -> Result<KeyPair, IdentityError> {
    let text = std::fs::read_to_string(path).map_err(|source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let key = KeyPair::from_seed(text.trim()).map_err(|e| {
        IdentityError::Invalid(format!("{}: not an nkey seed ({e})", path.display()))
    })?;
    if !key.public_key().starts_with('A') {
        return Err(IdentityError::Invalid(format!(
            "{}: not an account seed (it must start with SA)",
            path.display()
        )));
    }
    Ok(key)
}

/// Writes a secret (a seed or creds) readable by its owner only (0600), replacing any file.
pub fn write_secret(path: &Path, contents: &str) -> Result<(), IdentityError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    };
    // A file left by someone else keeps its mode on truncate: start from a new one.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)
}

/// Revoked user keys (public `U…` key → unix seconds: every JWT of that key issued at or
/// before it is refused), kept one per line as `KEY SECONDS` in a deployment's `revoked`
/// file beside its seeds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Revocations(pub std::collections::BTreeMap<String, u64>);

impl Revocations {
    /// The revocations in `path`; none when the file does not exist.
    pub fn read(path: &Path) -> Result<Revocations, IdentityError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(IdentityError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let mut revoked = Self::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let parsed = line
                .split_once(' ')
                .and_then(|(key, at)| Some((key, at.trim().parse::<u64>().ok()?)))
                .filter(|(key, _)| KeyPair::from_public_key(key).is_ok() && key.starts_with('U'));
            let Some((key, at)) = parsed else {
                return Err(IdentityError::Invalid(format!(
                    "{}: '{line}' is not 'USER_PUBLIC_KEY UNIX_SECONDS'",
                    path.display()
                )));
            };
            revoked.0.insert(key.to_string(), at);
        }
        Ok(revoked)
    }

    /// Revokes `user_key` as of now; its tokens issued until now stop working.
    pub fn revoke(&mut self, user_key: &str) -> Result<(), IdentityError> {
        if !user_key.starts_with('U') || KeyPair::from_public_key(user_key).is_err() {
            return Err(IdentityError::Invalid(format!(
                "'{user_key}' is not a user's public key (U…)"
            )));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.0.insert(user_key.to_string(), now);
        Ok(())
    }

    pub fn write(&self, path: &Path) -> Result<(), IdentityError> {
        let text: String = self
            .0
            .iter()
            .map(|(key, at)| format!("{key} {at}\n"))
            .collect();
        std::fs::write(path, text).map_err(|source| IdentityError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

/// The keys of one deployment: the operator the server trusts, the project's account and
/// the system account (the server's own).
pub struct Trust {
    pub operator: KeyPair,
    pub account: KeyPair,
    pub system: KeyPair,
}

impl Trust {
    pub fn generate() -> Trust {
        Trust {
            operator: KeyPair::new_operator(),
            account: KeyPair::new_account(),
            system: KeyPair::new_account(),
        }
    }

    /// The operator's JWT, which the server trusts. Sign it once per deployment and keep it
    /// (`deployment`): nats-server cannot reload a configuration whose operator changed,
    /// and a fresh signature (new `jti`, `iat`) is a change.
    pub fn operator_jwt(&self) -> Result<String, IdentityError> {
        sign_jwt(
            &self.operator,
            json!({"name": "golden-arch", "sub": self.operator.public_key(),
                   "nats": {"type": "operator", "version": 2,
                            "system_account": self.system.public_key()}}),
        )
    }

    /// The nats-server settings that trust `operator` (this operator's JWT) and its two
    /// accounts (operator mode with the accounts preloaded: no resolver service to run).
    /// nats-server 2.9 takes the operator JWT inline. The account carries `revoked`: a
    /// user key listed there cannot connect with a JWT issued at or before its time (NATS's
    /// own rule); a running server applies a new list when it reloads this configuration.
    pub fn server_config(
        &self,
        operator: &str,
        revoked: &Revocations,
    ) -> Result<String, IdentityError> {
        let unlimited = json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
        });
        let account = sign_jwt(
            &self.operator,
            json!({"name": "controlplane", "sub": self.account.public_key(),
                   "nats": {"type": "account", "version": 2, "limits": unlimited,
                            "revocations": revoked.0}}),
        )?;
        let system = sign_jwt(
            &self.operator,
            json!({"name": "SYS", "sub": self.system.public_key(),
                   "nats": {"type": "account", "version": 2,
                            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                                       "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}}}),
        )?;
        Ok(format!(
            "# Generated by nats-identities (natsauth): operator-mode authentication.\n\
             # Clients connect with a creds file whose user JWT the account below signed.\n\
             operator: \"{operator}\"\n\
             system_account: {system_pub}\n\
             resolver: MEMORY\n\
             resolver_preload: {{\n  {account_pub}: \"{account}\"\n  {system_pub}: \"{system}\"\n}}\n",
            system_pub = self.system.public_key(),
            account_pub = self.account.public_key(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_subject_names_its_sender() {
        let subject = subjects::command("cp", "billing", "budget", "request");
        assert_eq!(subject, "cp.cmd.billing.budget.request");
        assert_eq!(
            subjects::sender_and_verb("cp", &subject),
            Some(("billing", "request"))
        );
        assert_eq!(
            subjects::sender_and_verb("cp", "cp.cmd.budget.request"),
            None
        );
        assert_eq!(
            subjects::sender_and_verb("cp", "cpx.cmd.a.budget.request"),
            None
        );
        assert_eq!(
            subjects::sender_and_verb("cp", "cp.cmd.a.budget.request.x"),
            None
        );
    }

    #[test]
    fn service_names_are_one_token_and_not_reserved() {
        assert!(validate_service_name("billing-v2").is_ok());
        for bad in [
            "",
            "a.b",
            "a*",
            ">",
            "Billing",
            "-x",
            "sandbox",
            "controlplane",
            "admin",
        ] {
            assert!(validate_service_name(bad).is_err(), "{bad}");
        }
        assert!(validate_service_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn creds_name_their_identity() {
        let account = KeyPair::new_account();
        let creds = user_creds(&account, &Role::Service("billing".into()), "cp").unwrap();
        assert_eq!(creds_name(&creds).unwrap(), "billing");
        assert!(creds.contains("-----BEGIN USER NKEY SEED-----\nSU"));
    }

    #[test]
    fn a_service_may_publish_only_its_own_commands() {
        let permissions = Role::Service("billing".into()).permissions("cp").unwrap();
        assert_eq!(permissions["pub"]["allow"], json!(["cp.cmd.billing.>"]));
        assert_eq!(permissions["sub"]["allow"], json!(["cp.reply.billing.>"]));
    }
}
