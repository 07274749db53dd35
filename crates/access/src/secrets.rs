//! The secret-key lookup s3s's verifier calls, over [`Identities`].

use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};
use strongroom_iam::Identities;

/// Hands s3s the secret of an access key (accounts, IAM users, sessions).
#[derive(Clone)]
pub struct SecretLookup(pub Identities);

#[async_trait::async_trait]
impl S3Auth for SecretLookup {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.secret_of(access_key) {
            Some(secret) => Ok(SecretKey::from(secret.as_str())),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}
