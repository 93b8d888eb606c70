//! Who may do what. Issues and verifies the control plane's JWTs (HS256 only) and holds
//! the role → permission matrix (documented in `docs/permissions.md`). Shared by the
//! gateway and the sandbox service so both agree on one token format.
#![forbid(unsafe_code)]

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Issuer written into and required from every token.
pub const ISSUER: &str = "golden-arch-controlplane";
/// Audience of the control plane's session tokens (what login issues).
pub const AUDIENCE: &str = "golden-arch";
/// Audience of the tokens the sandbox service accepts. Only the gateway issues them, for
/// one proxied request at a time and after its own session check, so a session that was
/// revoked (logout, password or role change, disabled account) cannot reach the sandbox:
/// the sandbox has no view of revocations and refuses session tokens outright.
pub const SANDBOX_AUDIENCE: &str = "golden-arch-sandbox";
/// Lifetime of a sandbox token: the sandbox checks it when the request arrives.
pub const SANDBOX_TOKEN_SECONDS: i64 = 60;
/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECONDS: u64 = 5;

/// A permission, as carried in tokens and declared on routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "read:budget")]
    ReadBudget,
    #[serde(rename = "write:budget")]
    WriteBudget,
    #[serde(rename = "admin:budget")]
    AdminBudget,
    #[serde(rename = "read:dlq")]
    ReadDlq,
    #[serde(rename = "write:dlq")]
    WriteDlq,
    #[serde(rename = "read:breakers")]
    ReadBreakers,
    #[serde(rename = "write:breakers")]
    WriteBreakers,
    #[serde(rename = "admin:reset_breakers")]
    AdminResetBreakers,
    #[serde(rename = "read:governance")]
    ReadGovernance,
    #[serde(rename = "read:system")]
    ReadSystem,
    #[serde(rename = "read:audit")]
    ReadAudit,
    #[serde(rename = "execute:code")]
    ExecuteCode,
    #[serde(rename = "admin:users")]
    AdminUsers,
}

impl Permission {
    pub const ALL: [Permission; 13] = [
        Permission::ReadBudget,
        Permission::WriteBudget,
        Permission::AdminBudget,
        Permission::ReadDlq,
        Permission::WriteDlq,
        Permission::ReadBreakers,
        Permission::WriteBreakers,
        Permission::AdminResetBreakers,
        Permission::ReadGovernance,
        Permission::ReadSystem,
        Permission::ReadAudit,
        Permission::ExecuteCode,
        Permission::AdminUsers,
    ];

    /// The wire name, e.g. `read:budget`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadBudget => "read:budget",
            Permission::WriteBudget => "write:budget",
            Permission::AdminBudget => "admin:budget",
            Permission::ReadDlq => "read:dlq",
            Permission::WriteDlq => "write:dlq",
            Permission::ReadBreakers => "read:breakers",
            Permission::WriteBreakers => "write:breakers",
            Permission::AdminResetBreakers => "admin:reset_breakers",
            Permission::ReadGovernance => "read:governance",
            Permission::ReadSystem => "read:system",
            Permission::ReadAudit => "read:audit",
            Permission::ExecuteCode => "execute:code",
            Permission::AdminUsers => "admin:users",
        }
    }
}

/// A role; each is a fixed set of permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Developer,
    Auditor,
    Viewer,
    Service,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Operator,
        Role::Developer,
        Role::Auditor,
        Role::Viewer,
        Role::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Developer => "developer",
            Role::Auditor => "auditor",
            Role::Viewer => "viewer",
            Role::Service => "service",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The permission matrix. Keep `docs/permissions.md` in step with it.
    pub fn permissions(self) -> Vec<Permission> {
        use Permission::*;
        match self {
            Role::Admin => Permission::ALL.to_vec(),
            Role::Operator => vec![
                ReadBudget,
                WriteBudget,
                AdminBudget,
                ReadDlq,
                WriteDlq,
                ReadBreakers,
                WriteBreakers,
                AdminResetBreakers,
                ReadGovernance,
                ReadSystem,
            ],
            Role::Developer => vec![
                ReadBudget,
                WriteBudget,
                ReadDlq,
                ReadBreakers,
                ReadGovernance,
                ReadSystem,
                ExecuteCode,
            ],
            Role::Auditor => vec![
                ReadBudget,
                ReadDlq,
                ReadBreakers,
                ReadGovernance,
                ReadSystem,
                ReadAudit,
            ],
            Role::Viewer => vec![ReadBudget, ReadBreakers, ReadGovernance, ReadSystem],
            Role::Service => vec![
                ReadBudget,
                WriteBudget,
                WriteDlq,
                ReadBreakers,
                WriteBreakers,
            ],
        }
    }
}

/// The claims of a control-plane token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    pub role: Role,
    pub permissions: Vec<Permission>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// The tenants this user may see and act on; absent for all tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    /// The login session this token belongs to (logout revokes it).
    #[serde(default)]
    pub sid: String,
    /// The user's token version when the token was issued: a password, role, scope or
    /// status change raises it, which ends every older session.
    #[serde(default)]
    pub ver: i64,
}

/// What a token grants: who, with which role, over which tenants, in which session.
#[derive(Clone, Debug)]
pub struct Grant<'a> {
    pub username: &'a str,
    pub role: Role,
    pub tenants: Option<&'a [String]>,
    pub session_id: &'a str,
    pub version: i64,
}

impl<'a> Grant<'a> {
    /// An unscoped grant outside any stored session (tests and tools).
    pub fn unscoped(username: &'a str, role: Role) -> Self {
        Self {
            username,
            role,
            tenants: None,
            session_id: "",
            version: 0,
        }
    }
}

impl Claims {
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    pub fn scope(&self) -> TenantScope {
        match &self.tenants {
            None => TenantScope::all(),
            Some(tenants) => TenantScope::only(tenants.iter().cloned()),
        }
    }
}

/// The tenants a user or a service may see and act on. Enforced where the tenant of a
/// request becomes known (HTTP, NATS and the WebSocket share it), so one rule holds at
/// every entrance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantScope(Option<Arc<BTreeSet<String>>>);

impl TenantScope {
    /// Every tenant (admins, auditors, unscoped users and services).
    pub const fn all() -> Self {
        Self(None)
    }

    /// Only these tenants (none at all when the list is empty).
    pub fn only(tenants: impl IntoIterator<Item = String>) -> Self {
        Self(Some(Arc::new(tenants.into_iter().collect())))
    }

    pub fn allows(&self, tenant: &str) -> bool {
        self.0.as_ref().is_none_or(|set| set.contains(tenant))
    }

    /// The tenants, or `None` for all of them.
    pub fn tenants(&self) -> Option<&BTreeSet<String>> {
        self.0.as_deref()
    }

    /// The tenants as a sorted list (a SQL `text[]` parameter), or `None` for all.
    pub fn to_list(&self) -> Option<Vec<String>> {
        self.0.as_ref().map(|set| set.iter().cloned().collect())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("could not sign token: {0}")]
    Signing(String),
}

/// Signs and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime_seconds: i64,
    /// The audience these keys issue tokens for and require.
    audience: &'static str,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("TokenKeys")
            .field("lifetime_seconds", &self.lifetime_seconds)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], lifetime_seconds: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECONDS;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime_seconds,
            audience: AUDIENCE,
        }
    }

    /// The same secret, issuing and requiring `audience` instead (the sandbox service
    /// verifies with `with_audience(SANDBOX_AUDIENCE)`).
    pub fn with_audience(mut self, audience: &'static str) -> Self {
        self.validation.set_audience(&[audience]);
        self.audience = audience;
        self
    }

    pub fn lifetime_seconds(&self) -> i64 {
        self.lifetime_seconds
    }

    /// Issues a token for the grant, with its role's permissions.
    pub fn issue(&self, grant: &Grant<'_>, now_unix: i64) -> Result<String, AuthError> {
        let claims = Claims {
            sub: grant.username.to_string(),
            role: grant.role,
            permissions: grant.role.permissions(),
            iat: now_unix,
            exp: now_unix + self.lifetime_seconds,
            iss: ISSUER.to_string(),
            aud: self.audience.to_string(),
            tenants: grant.tenants.map(<[String]>::to_vec),
            sid: grant.session_id.to_string(),
            ver: grant.version,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }

    /// A token for `audience` carrying `claims`' user, role, tenants and session, valid for
    /// `lifetime_seconds` from `now_unix` (and never past the session token's own expiry).
    pub fn issue_for(
        &self,
        claims: &Claims,
        audience: &str,
        lifetime_seconds: i64,
        now_unix: i64,
    ) -> Result<String, AuthError> {
        let claims = Claims {
            iat: now_unix,
            exp: (now_unix + lifetime_seconds).min(claims.exp),
            aud: audience.to_string(),
            ..claims.clone()
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }

    /// Verifies signature, algorithm, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn b64(bytes: &[u8]) -> String {
        // URL-safe base64 without padding, enough for hand-made tokens in tests.
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn issued_token_verifies_and_carries_role_permissions() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 3600);
        let token = keys
            .issue(&Grant::unscoped("alice", Role::Viewer), now())
            .unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.role, Role::Viewer);
        assert!(claims.has(Permission::ReadBudget));
        assert!(!claims.has(Permission::AdminResetBreakers));
    }

    #[test]
    fn token_signed_with_another_secret_is_rejected() {
        let a = TokenKeys::new(b"secret-a-secret-a-secret-a-secret", 3600);
        let b = TokenKeys::new(b"secret-b-secret-b-secret-b-secret", 3600);
        let token = a
            .issue(&Grant::unscoped("alice", Role::Admin), now())
            .unwrap();
        assert!(b.verify(&token).is_err());
    }

    #[test]
    fn expired_token_is_rejected() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 60);
        let token = keys
            .issue(&Grant::unscoped("alice", Role::Admin), now() - 3600)
            .unwrap();
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn alg_none_token_is_rejected() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 3600);
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "sub": "mallory", "role": "admin", "permissions": ["admin:users"],
            "iat": now(), "exp": now() + 3600, "iss": ISSUER, "aud": AUDIENCE,
        });
        let body = b64(claims.to_string().as_bytes());
        assert!(keys.verify(&format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn session_and_sandbox_tokens_are_not_interchangeable() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let sessions = TokenKeys::new(secret, 3600);
        let sandbox = TokenKeys::new(secret, 3600).with_audience(SANDBOX_AUDIENCE);
        let grant = Grant {
            username: "alice",
            role: Role::Developer,
            tenants: Some(&["acme".to_string()]),
            session_id: "s1",
            version: 3,
        };
        let session = sessions.issue(&grant, now()).unwrap();
        assert!(
            sandbox.verify(&session).is_err(),
            "a session token is refused by the sandbox"
        );
        let claims = sessions.verify(&session).unwrap();
        let for_sandbox = sessions
            .issue_for(&claims, SANDBOX_AUDIENCE, SANDBOX_TOKEN_SECONDS, now())
            .unwrap();
        assert!(
            sessions.verify(&for_sandbox).is_err(),
            "and a sandbox token by the control plane"
        );
        let carried = sandbox.verify(&for_sandbox).unwrap();
        assert_eq!(
            (
                carried.sub.as_str(),
                carried.role,
                carried.tenants.clone(),
                carried.sid.as_str(),
                carried.ver
            ),
            (
                "alice",
                Role::Developer,
                Some(vec!["acme".to_string()]),
                "s1",
                3
            )
        );
        assert!(carried.exp <= now() + SANDBOX_TOKEN_SECONDS);
    }

    #[test]
    fn a_token_for_another_audience_never_outlives_the_session_token() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 10);
        let claims = keys
            .verify(
                &keys
                    .issue(&Grant::unscoped("a", Role::Admin), now())
                    .unwrap(),
            )
            .unwrap();
        let token = keys
            .issue_for(&claims, SANDBOX_AUDIENCE, 3600, now())
            .unwrap();
        let sandbox =
            TokenKeys::new(b"0123456789abcdef0123456789abcdef", 10).with_audience(SANDBOX_AUDIENCE);
        assert_eq!(sandbox.verify(&token).unwrap().exp, claims.exp);
    }

    #[test]
    fn wrong_audience_is_rejected() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 3600);
        let claims = Claims {
            sub: "alice".into(),
            role: Role::Admin,
            permissions: vec![],
            iat: now(),
            exp: now() + 60,
            iss: ISSUER.into(),
            aud: "someone-else".into(),
            tenants: None,
            sid: String::new(),
            ver: 0,
        };
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn scoped_tokens_carry_their_tenants_and_session() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 3600);
        let tenants = vec!["org1".to_string()];
        let grant = Grant {
            username: "bob",
            role: Role::Viewer,
            tenants: Some(&tenants),
            session_id: "s-1",
            version: 7,
        };
        let claims = keys.verify(&keys.issue(&grant, now()).unwrap()).unwrap();
        assert_eq!((claims.sid.as_str(), claims.ver), ("s-1", 7));
        assert!(claims.scope().allows("org1"));
        assert!(!claims.scope().allows("org2"));
        let unscoped = keys
            .verify(
                &keys
                    .issue(&Grant::unscoped("a", Role::Admin), now())
                    .unwrap(),
            )
            .unwrap();
        assert!(unscoped.scope().allows("anyone"));
        assert!(!TenantScope::only([]).allows("org1"));
    }

    #[test]
    fn every_role_round_trips_by_name() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn permission_wire_names_match_serde() {
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }
}
