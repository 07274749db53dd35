//! Identity and access: who is calling (accounts and their credentials) and
//! whether they may do what they ask.
//!
//! Authentication yields a [`Principal`] that only this crate can construct
//! (from an access key whose signature a verifier checked with a secret
//! from [`Identities`]). Domain code takes a `&Principal`, so a handler
//! that forgot to authenticate does not compile.
//!
//! Authorization ([`authz`]) combines the caller's identity policies, a
//! resource policy and Block Public Access with AWS's evaluation logic and
//! fails closed; [`context`] holds the global condition keys. IAM users,
//! groups, roles and STS sessions live in the [`directory`]. This crate
//! knows nothing of S3 requests: the `access` crate reads those and asks
//! here for principals and decisions.
#![forbid(unsafe_code)]

pub mod authz;
pub mod context;
pub mod directory;
mod iam_input;
mod iam_manage;
mod iam_ops;
mod identities;
mod mfa;
pub mod policy;
pub mod sigv4;
pub mod totp;

pub use iam_input::IamError;
pub use iam_ops::{KeyInfo, NewCredentials, SessionLimits, generate_credentials};
pub use identities::KeyError;
pub use mfa::{MfaCaller, MfaFailure};
mod verify;

pub use verify::{AuthError, SignedRequest, parse_authorization};

/// Longest pre-signed URL lifetime (7 days, as AWS), seconds.
pub const MAX_PRESIGN_SECS: u64 = 604_800;
pub use identities::{AccountInfo, Identities, IdentityError, NewAccount, derive_canonical_id};

/// Filled by the access layer with the S3 operation's name, so the front door
/// can label metrics and logs with it. Insert one into a request's
/// extensions before handing it to s3s.
#[derive(Clone, Debug, Default)]
pub struct OperationSlot(pub std::sync::Arc<std::sync::OnceLock<String>>);

/// What the access layer learns of an S3 request as s3s parses and decides
/// it, for the front door's CORS headers and access-log record: the
/// bucket and key s3s read (the reading the operation acts on), the
/// requester, and the decided bucket's owner and logging configuration.
#[derive(Clone, Debug, Default)]
pub struct RequestSlot(pub std::sync::Arc<std::sync::Mutex<RequestFacts>>);

/// See [`RequestSlot`].
#[derive(Clone, Debug, Default)]
pub struct RequestFacts {
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The caller's ARN (None: anonymous, or not known).
    pub requester: Option<String>,
    /// Set when the decision read the bucket record: its owner (account
    /// id) and its logging configuration.
    pub decided_owner: Option<String>,
    pub decided_logging: Option<Option<String>>,
    /// How the request was signed, as server access logs name it:
    /// (`SigV4`/`SigV2`, `AuthHeader`/`QueryString`).
    pub signature: Option<(&'static str, &'static str)>,
}

impl RequestSlot {
    /// Changes the facts (a poisoned lock changes nothing).
    pub fn update(&self, f: impl FnOnce(&mut RequestFacts)) {
        if let Ok(mut g) = self.0.lock() {
            f(&mut g);
        }
    }
    /// What `f` makes of the facts, read in place (None: a poisoned lock).
    pub fn with<R>(&self, f: impl FnOnce(&RequestFacts) -> R) -> Option<R> {
        self.0.lock().ok().map(|g| f(&g))
    }

    /// A copy of the facts.
    pub fn get(&self) -> RequestFacts {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// Facts about the connection a request arrived on, inserted by the front
/// door into every request's extensions for authorization
/// (aws:SecureTransport, aws:SourceIp, s3:TlsVersion).
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: std::net::SocketAddr,
    pub secure: bool,
    pub tls_version: Option<String>,
    /// The negotiated cipher suite, by its OpenSSL name as AWS's access
    /// logs write it (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_128_GCM_SHA256`).
    pub cipher_suite: Option<&'static str>,
}

/// What kind of caller a [`Principal`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerKind {
    /// The account's root user.
    Root,
    /// An IAM user (name, unique id, path).
    User { name: String, id: String, path: String },
    /// A session of an assumed role.
    Role {
        role: String,
        role_id: String,
        session: String,
        path: String,
    },
    /// An unsigned request.
    Anonymous,
}

/// An authenticated (or anonymous) caller. Only this crate creates one.
#[derive(Clone, Debug)]
pub struct Principal {
    account_id: String,
    display_name: String,
    canonical_id: String,
    access_key: String,
    kind: CallerKind,
    /// Unix seconds of the MFA check behind these credentials.
    mfa_at: Option<i64>,
    /// Temporary credentials (STS).
    temporary: bool,
    _proof: Proof,
}

/// Zero-sized token: holding a `Principal` proves the access hook ran.
#[derive(Clone, Debug)]
struct Proof;

impl Principal {
    /// The 12-digit account id.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }
    /// Display name of the account (Owner.DisplayName).
    pub fn display_name(&self) -> &str {
        &self.display_name
    }
    /// Canonical user id (Owner.ID).
    pub fn canonical_id(&self) -> &str {
        &self.canonical_id
    }
    /// The access key that signed the request.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }
    pub fn kind(&self) -> &CallerKind {
        &self.kind
    }
    pub fn is_anonymous(&self) -> bool {
        self.kind == CallerKind::Anonymous
    }
    pub fn is_root(&self) -> bool {
        self.kind == CallerKind::Root
    }
    /// The caller's ARN (aws:PrincipalArn): the role's ARN for role sessions.
    pub fn arn(&self) -> String {
        let a = &self.account_id;
        match &self.kind {
            CallerKind::Root => format!("arn:aws:iam::{a}:root"),
            CallerKind::User { name, path, .. } => format!("arn:aws:iam::{a}:user{path}{name}"),
            CallerKind::Role { role, path, .. } => format!("arn:aws:iam::{a}:role{path}{role}"),
            CallerKind::Anonymous => "*".to_owned(),
        }
    }
    /// The ARN STS reports (GetCallerIdentity): the session's for roles.
    pub fn identity_arn(&self) -> String {
        match &self.kind {
            CallerKind::Role { role, session, .. } => {
                format!("arn:aws:sts::{}:assumed-role/{role}/{session}", self.account_id)
            }
            _ => self.arn(),
        }
    }
    /// aws:userid.
    pub fn userid(&self) -> String {
        match &self.kind {
            CallerKind::Root => self.account_id.clone(),
            CallerKind::User { id, .. } => id.clone(),
            CallerKind::Role { role_id, session, .. } => format!("{role_id}:{session}"),
            CallerKind::Anonymous => "anonymous".to_owned(),
        }
    }
    /// aws:PrincipalType.
    pub fn principal_type(&self) -> &'static str {
        match self.kind {
            CallerKind::Root => "Account",
            CallerKind::User { .. } => "User",
            CallerKind::Role { .. } => "AssumedRole",
            CallerKind::Anonymous => "Anonymous",
        }
    }
    /// Unix seconds of the MFA authentication behind the credentials.
    pub fn mfa_at(&self) -> Option<i64> {
        self.mfa_at
    }
    /// True for STS credentials.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }
    /// The anonymous caller.
    pub(crate) fn anonymous() -> Principal {
        Principal {
            account_id: String::new(),
            display_name: String::new(),
            canonical_id: String::new(),
            access_key: String::new(),
            kind: CallerKind::Anonymous,
            mfa_at: None,
            temporary: false,
            _proof: Proof,
        }
    }
}

pub(crate) fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
