//! Generating credentials and deriving the only forms of them that are stored.

use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};
use rewind_domain::{ObjectId, Timestamp};
use rewind_store::{ApiKey, ServiceAccount, ServiceAccountSecret};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::digest::StoredDigestSecret;

/// Lowercase hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Constant-time equality of two hex digests.
pub fn digests_equal(left: &str, right: &str) -> bool {
    left.len() == right.len() && bool::from(left.as_bytes().ct_eq(right.as_bytes()))
}

/// An API key public key: 8 lowercase letters, as Atlas issues them.
pub fn new_public_key() -> String {
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// An API key private key: a random UUID-shaped string, as Atlas issues them.
pub fn new_private_key() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    let text = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &text[..8],
        &text[8..12],
        &text[12..16],
        &text[16..20],
        &text[20..]
    )
}

/// A service account client id: `mdb_sa_id_` and 24 hex digits.
pub fn new_client_id() -> String {
    format!("mdb_sa_id_{}", ObjectId::generate())
}

/// A service account secret: `mdb_sa_sk_` and 40 random alphanumerics.
pub fn new_client_secret() -> String {
    format!(
        "mdb_sa_sk_{}",
        Alphanumeric.sample_string(&mut rand::rng(), 40)
    )
}

/// A bearer token: 43 random URL-safe characters (256 bits).
pub fn new_access_token() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 43)
}

/// The masked form of a secret shown after creation.
pub fn mask(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("mdb_sa_sk_****{tail}")
}

/// Creates an API key in `org_id` and returns it with its private key, the only time it is
/// shown. Used by the API and by first-start bootstrap.
pub fn new_api_key(
    org_id: ObjectId,
    description: String,
    org_roles: Vec<String>,
) -> (ApiKey, String) {
    let public_key = new_public_key();
    let private_key = new_private_key();
    let derived = StoredDigestSecret::derive(&public_key, &private_key);
    let key = ApiKey {
        id: ObjectId::generate(),
        org_id,
        public_key,
        description,
        ha1_md5: derived.ha1_md5,
        ha1_sha256: derived.ha1_sha256,
        private_key_suffix: private_key[private_key.len() - 12..].to_owned(),
        org_roles,
        group_roles: Vec::new(),
        created_at: Timestamp::now(),
    };
    (key, private_key)
}

/// Creates a service account in `org_id` with one secret, returned in clear once.
pub fn new_service_account(
    org_id: ObjectId,
    name: String,
    description: String,
    roles: Vec<String>,
    secret_hours: i32,
) -> (ServiceAccount, String) {
    let secret = new_client_secret();
    let now = Timestamp::now();
    let account = ServiceAccount {
        client_id: new_client_id(),
        org_id,
        name,
        description,
        org_roles: roles,
        group_roles: Vec::new(),
        secrets: vec![ServiceAccountSecret {
            id: ObjectId::generate(),
            secret_sha256: sha256_hex(&secret),
            masked: mask(&secret),
            created_at: now,
            expires_at: now.plus_millis(i64::from(secret_hours) * 3_600_000),
        }],
        created_at: now,
    };
    (account, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_atlas() {
        let public = new_public_key();
        assert!(public.len() == 8 && public.chars().all(|c| c.is_ascii_lowercase()));
        assert_eq!(new_private_key().len(), 36);
        assert!(new_client_id().starts_with("mdb_sa_id_"));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "lowercase hex, as stored"
        );
        assert!(digests_equal(&sha256_hex("a"), &sha256_hex("a")));
        assert!(!digests_equal(&sha256_hex("a"), &sha256_hex("b")));
    }
}
