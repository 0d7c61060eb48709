//! Credentials: API keys, service accounts, bearer grants and their revocation.

use rewind_domain::group::{Group, Organization};
use rewind_domain::{ObjectId, Timestamp};

use crate::{
    AccessToken, ApiKey, BearerGrant, MetadataStore, Page, ServiceAccount, ServiceAccountSecret,
    StoreError,
};

pub(super) async fn credentials(store: &dyn MetadataStore, org: &Organization, group: &Group) {
    let key = ApiKey {
        id: ObjectId::generate(),
        org_id: org.id,
        public_key: "abcdefgh".into(),
        description: "key".into(),
        ha1_md5: "00".repeat(16),
        ha1_sha256: "11".repeat(32),
        private_key_suffix: "0123456789ab".into(),
        org_roles: vec!["ORG_OWNER".into()],
        group_roles: vec![],
        created_at: Timestamp::now(),
    };
    store.create_api_key(&key).await.unwrap();
    assert!(
        matches!(
            store
                .create_api_key(&ApiKey {
                    id: ObjectId::generate(),
                    ..key.clone()
                })
                .await,
            Err(StoreError::AlreadyExists(_))
        ),
        "public keys are unique"
    );
    assert_eq!(
        store.get_api_key_by_public_key("abcdefgh").await.unwrap(),
        Some(key.clone())
    );
    let assigned = ApiKey {
        group_roles: vec![(group.id, "GROUP_OWNER".into())],
        description: "changed".into(),
        ..key.clone()
    };
    assert!(store.update_api_key(&assigned).await.unwrap());
    assert_eq!(
        store.get_api_key_by_public_key("abcdefgh").await.unwrap(),
        Some(assigned.clone()),
        "a key's new roles count at once"
    );
    assert_eq!(store.get_api_key(key.id).await.unwrap(), Some(assigned));
    assert_eq!(store.list_api_keys(org.id, Page::ALL).await.unwrap().1, 1);

    let now = Timestamp::now();
    let account = ServiceAccount {
        client_id: "mdb_sa_id_test".into(),
        org_id: org.id,
        name: "sa".into(),
        description: "d".into(),
        org_roles: vec!["ORG_READ_ONLY".into()],
        group_roles: vec![(group.id, "GROUP_READ_ONLY".into())],
        secrets: vec![ServiceAccountSecret {
            id: ObjectId::generate(),
            secret_sha256: "22".repeat(32),
            masked: "mdb_sa_sk_****abcd".into(),
            created_at: now,
            expires_at: now.plus_days(1),
        }],
        created_at: now,
    };
    store.create_service_account(&account).await.unwrap();
    assert_eq!(
        store.get_service_account(&account.client_id).await.unwrap(),
        Some(account.clone())
    );
    let token = AccessToken {
        token_sha256: "33".repeat(32),
        client_id: account.client_id.clone(),
        expires_at: now.plus_days(1),
    };
    store.create_access_token(&token).await.unwrap();
    assert_eq!(
        store.get_access_token(&token.token_sha256).await.unwrap(),
        Some(token.clone())
    );
    let grant = store
        .get_bearer_grant(&token.token_sha256)
        .await
        .unwrap()
        .expect("grant of a live token");
    assert_eq!(
        grant,
        BearerGrant {
            client_id: account.client_id.clone(),
            org_id: org.id,
            org_roles: account.org_roles.clone(),
            group_roles: account.group_roles.clone(),
            expires_at: token.expires_at
        }
    );
    let stale = AccessToken {
        token_sha256: "44".repeat(32),
        client_id: account.client_id.clone(),
        expires_at: now.plus_millis(-1),
    };
    store.create_access_token(&stale).await.unwrap();
    assert_eq!(
        store.delete_expired_access_tokens(now).await.unwrap(),
        1,
        "only the expired token is swept"
    );
    assert!(
        store
            .get_access_token(&stale.token_sha256)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .revoke_access_token(&token.token_sha256)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_bearer_grant(&token.token_sha256)
            .await
            .unwrap()
            .is_none(),
        "revoked at once"
    );
    store.create_access_token(&token).await.unwrap();
    assert!(
        store
            .delete_service_account(&account.client_id)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_bearer_grant(&token.token_sha256)
            .await
            .unwrap()
            .is_none(),
        "deleting the account revokes its tokens"
    );
    assert!(store.delete_api_key(key.id).await.unwrap());
    let first = store.shared_secret("test-secret", "aaaa").await.unwrap();
    let second = store.shared_secret("test-secret", "bbbb").await.unwrap();
    assert_eq!(
        (first.as_str(), second.as_str()),
        ("aaaa", "aaaa"),
        "the first stored secret wins"
    );
    assert!(store.get_api_key(key.id).await.unwrap().is_none());
    assert!(
        store
            .get_api_key_by_public_key("abcdefgh")
            .await
            .unwrap()
            .is_none(),
        "a deleted key stops working at once"
    );
}
