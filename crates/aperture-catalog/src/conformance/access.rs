//! Conformance: tokens, grants and the audit chain.

use super::*;

/// Tokens round-trip, check their secret, scopes and collections, and stay listed when
/// revoked.
pub fn tokens_and_grants<C: Catalog + crate::Access>(make: &dyn Fn() -> C) {
    use crate::access::{NewToken, Scope, split_token};
    let catalog = make();
    let admin = NewToken::generate("admin", vec![Scope::Admin], None).unwrap();
    let narrow = NewToken::generate(
        "press desk",
        vec![Scope::Read, Scope::Search],
        Some(vec!["press".into()]),
    )
    .unwrap();
    catalog.create_token(&admin.token).unwrap();
    catalog.create_token(&narrow.token).unwrap();

    let (id, secret) = split_token(&narrow.text).unwrap();
    let stored = catalog.token(id).unwrap().unwrap();
    assert_eq!(stored, narrow.token, "round trip");
    assert!(stored.verify(secret));
    assert!(!stored.verify(split_token(&admin.text).unwrap().1));
    assert!(stored.sees("press") && !stored.sees("archive"));
    assert!(stored.allows(Scope::Search) && !stored.allows(Scope::Ingest));
    assert_eq!(catalog.token("000000000000").unwrap(), None);
    assert_eq!(catalog.tokens().unwrap().len(), 2);

    catalog
        .set_token_collections(id, Some(&["archive".into(), "press".into()]))
        .unwrap();
    assert!(catalog.token(id).unwrap().unwrap().sees("archive"));
    catalog.set_token_collections(id, None).unwrap();
    assert_eq!(catalog.token(id).unwrap().unwrap().collections, None);
    assert!(catalog.set_token_collections("nope", None).is_err());

    assert!(catalog.revoke_token(id).unwrap());
    assert!(
        !catalog.revoke_token(id).unwrap(),
        "second revoke is a no-op"
    );
    let revoked = catalog.token(id).unwrap().unwrap();
    assert!(revoked.revoked_at.is_some() && !revoked.allows(Scope::Read));
    assert!(matches!(
        catalog.revoke_token("nope"),
        Err(Error::NotFound { .. })
    ));
}

/// Appends, batched or from many threads, make one unbroken chain.
pub fn audit_chain<C: Catalog + crate::Access>(make: &dyn Fn() -> C) {
    use crate::access::{ChainCheck, GENESIS, NewAuditEntry};
    let catalog = make();
    let entry = |n: u32| NewAuditEntry {
        actor: "token:test".into(),
        action: "search".into(),
        target: n.is_multiple_of(2).then(|| format!("asset-{n}")),
        detail: serde_json::json!({ "query": format!("q{n}"), "hits": n }),
    };
    let mut written = catalog.append_audit(&[entry(0)]).unwrap();
    written.extend(
        catalog
            .append_audit(&(1..5).map(entry).collect::<Vec<_>>())
            .unwrap(),
    );
    assert_eq!(written[0].prev, GENESIS);
    for pair in written.windows(2) {
        assert_eq!(pair[1].prev, pair[0].hash);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    let read = catalog.audit_entries(0, 100).unwrap();
    assert_eq!(read, written);
    assert_eq!(catalog.audit_entries(3, 1).unwrap(), written[3..4]);
    let mut check = ChainCheck::default();
    for e in &read {
        check.next(e).unwrap();
    }
    assert_eq!(check.head().0, 5);

    // Appends from many threads still make one chain.
    std::thread::scope(|s| {
        for t in 0..4 {
            let catalog = &catalog;
            s.spawn(move || {
                for n in 0..10 {
                    catalog.append_audit(&[entry(t * 100 + n)]).unwrap();
                }
            });
        }
    });
    let mut check = ChainCheck::default();
    for e in catalog.audit_entries(0, 1000).unwrap() {
        check.next(&e).unwrap();
    }
    assert_eq!(check.checked, 45);
}

/// Web UI sessions: found by the hash of their id until they expire or are closed; revoking
/// the token ends them.
pub fn sessions<C: Catalog + crate::Access>(make: &dyn Fn() -> C) {
    use crate::access::{NewToken, Scope};
    let catalog = make();
    let token = NewToken::generate("browser", vec![Scope::Read], None).unwrap();
    catalog.create_token(&token.token).unwrap();
    let now = UnixMillis::now();
    let later = UnixMillis(now.0 + 3_600_000);
    let (one, two, old) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    catalog.open_session(&one, &token.token.id, later).unwrap();
    catalog.open_session(&two, &token.token.id, later).unwrap();
    catalog
        .open_session(&old, &token.token.id, UnixMillis(now.0 - 1))
        .unwrap();
    assert_eq!(
        catalog.session_token(&one, now).unwrap().as_deref(),
        Some(token.token.id.as_str())
    );
    assert_eq!(catalog.session_token(&old, now).unwrap(), None, "expired");
    assert_eq!(
        catalog
            .session_token(&one, UnixMillis(later.0 + 1))
            .unwrap(),
        None,
        "expires at its time"
    );
    assert_eq!(catalog.session_token(&[9u8; 32], now).unwrap(), None);
    catalog.close_session(&one).unwrap();
    catalog.close_session(&one).unwrap();
    assert_eq!(
        catalog.session_token(&one, now).unwrap(),
        None,
        "signed out"
    );
    assert!(catalog.session_token(&two, now).unwrap().is_some());
    catalog.revoke_token(&token.token.id).unwrap();
    assert_eq!(
        catalog.session_token(&two, now).unwrap(),
        None,
        "revoking the token ends its sessions"
    );
}
