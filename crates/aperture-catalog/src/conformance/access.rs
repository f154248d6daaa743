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
    use crate::access::{AuditKey, ChainCheck, GENESIS, NewAuditEntry};
    let catalog = make();
    let key = AuditKey::new([5; 32], 1);
    let entry = |n: u32| {
        NewAuditEntry::new(
            "token:test",
            "search",
            n.is_multiple_of(2).then(|| format!("asset-{n}")),
            serde_json::json!({ "query": format!("q{n}"), "hits": n }),
        )
    };
    // A keyed log starts with the key's own entry.
    let mut written = catalog
        .append_audit(&key, &[NewAuditEntry::audit_key(&key), entry(0)])
        .unwrap();
    written.extend(
        catalog
            .append_audit(&key, &(1..5).map(entry).collect::<Vec<_>>())
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
    let mut check = ChainCheck::new(key.clone());
    for e in &read {
        check.next(e).unwrap();
    }
    check.finish().unwrap();
    assert_eq!(check.head().0, 6);
    // Under another key, the first entry is refused.
    let mut other = ChainCheck::new(AuditKey::new([6; 32], 1));
    assert_eq!(other.next(&read[0]).unwrap_err().seq, 1);

    // Appends from many threads still make one chain.
    std::thread::scope(|s| {
        for t in 0..4 {
            let catalog = &catalog;
            let key = &key;
            s.spawn(move || {
                for n in 0..10 {
                    catalog.append_audit(key, &[entry(t * 100 + n)]).unwrap();
                }
            });
        }
    });
    let mut check = ChainCheck::new(key);
    for e in catalog.audit_entries(0, 1000).unwrap() {
        check.next(&e).unwrap();
    }
    check.finish().unwrap();
    assert_eq!(check.checked, 46);
}

/// What the log says of an asset (by id, or by a path it was ingested from or below) is
/// deleted with the asset, and nothing else is; the chain still verifies.
pub fn audit_forgets_erased_assets<C: Catalog + crate::Access>(make: &dyn Fn() -> C) {
    use super::{id_of, new_asset, record_one};
    use crate::access::{AuditKey, ChainCheck, NewAuditEntry};
    let catalog = make();
    let key = AuditKey::new([5; 32], 1);
    let c = catalog.ensure_collection("c").unwrap().id;
    let gone = id_of(record_one(
        &catalog,
        &new_asset(c, b"gone", "/in/leaks/memo.txt"),
    ));
    let kept = id_of(record_one(
        &catalog,
        &new_asset(c, b"kept", "/in/other/note.txt"),
    ));
    let json = |name: &str| serde_json::json!({ "name": name });
    let entries = [
        NewAuditEntry::audit_key(&key),
        NewAuditEntry::new(
            "cli:a",
            "ingest_start",
            Some("c".into()),
            serde_json::json!({}),
        )
        .naming_path("/in/leaks", json("/in/leaks"))
        .naming_path("/in/other/", json("/in/other"))
        // A sibling whose name starts alike is not above it.
        .naming_path("/in/leaks-2", json("/in/leaks-2")),
        NewAuditEntry::new(
            "cli:a",
            "read_original",
            Some(gone.to_string()),
            serde_json::json!({}),
        )
        .naming(gone, json("memo.txt")),
        NewAuditEntry::new(
            "cli:a",
            "read_original",
            Some(kept.to_string()),
            serde_json::json!({}),
        )
        .naming(kept, json("note.txt")),
        NewAuditEntry::new("cli:a", "ingest", Some("c".into()), serde_json::json!({}))
            .naming_path("/in/leaks/memo.txt", json("/in/leaks/memo.txt")),
    ];
    catalog.append_audit(&key, &entries).unwrap();
    let text =
        |catalog: &C| serde_json::to_string(&catalog.audit_entries(0, 100).unwrap()).unwrap();
    let before = text(&catalog);
    assert!(
        before.contains("memo.txt") && before.contains("/in/leaks"),
        "{before}"
    );

    let mut deletion = catalog.delete_asset(gone).unwrap();
    deletion.audit_details.sort();
    assert_eq!(deletion.audit_details, [(2, 0), (3, 0), (5, 0)]);
    let after = text(&catalog);
    for erased in ["memo.txt", "/in/leaks\\\"", "/in/leaks/"] {
        assert!(!after.contains(erased), "{erased} is still in {after}");
    }
    for kept in ["note.txt", "/in/other", "/in/leaks-2"] {
        assert!(after.contains(kept), "{kept} went: {after}");
    }
    let check = |catalog: &C| {
        let mut check = ChainCheck::new(key.clone());
        for e in &catalog.audit_entries(0, 100).unwrap() {
            check.next(e)?;
        }
        check.finish().map(|()| check)
    };
    // Until the erasure says what it deleted, the missing details look deleted by hand.
    assert!(check(&catalog).unwrap_err().problem.contains("by hand"));
    catalog
        .append_audit(
            &key,
            &[NewAuditEntry::erased_details(gone, &deletion.audit_details)],
        )
        .unwrap();
    let checked = check(&catalog).unwrap();
    assert_eq!((checked.checked, checked.erased), (6, 3));

    // A read that comes after the erasure keeps nothing of the erased asset.
    catalog
        .append_audit(
            &key,
            &[
                NewAuditEntry::new("cli:a", "read_original", None, serde_json::json!({}))
                    .naming(gone, json("memo.txt")),
            ],
        )
        .unwrap();
    assert!(!text(&catalog).contains("memo.txt"));
    check(&catalog).unwrap();

    // The other asset's erasure erases only its own details.
    let mut deletion = catalog.delete_asset(kept).unwrap();
    deletion.audit_details.sort();
    assert_eq!(deletion.audit_details, [(2, 1), (4, 0)]);
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
    // Signing in over and over keeps the newest sessions only.
    let busy = NewToken::generate("script", vec![Scope::Read], None).unwrap();
    catalog.create_token(&busy.token).unwrap();
    let many = crate::access::SESSIONS_PER_TOKEN as u8 + 5;
    for i in 0..many {
        let until = UnixMillis(later.0 + 1_000 + i64::from(i));
        catalog
            .open_session(&[100 + i; 32], &busy.token.id, until)
            .unwrap();
    }
    let live = (0..many)
        .filter(|i| {
            catalog
                .session_token(&[100 + i; 32], now)
                .unwrap()
                .is_some()
        })
        .count();
    assert_eq!(live as i64, crate::access::SESSIONS_PER_TOKEN);
    assert!(
        catalog
            .session_token(&[100 + many - 1; 32], now)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        catalog.session_token(&[100; 32], now).unwrap(),
        None,
        "the oldest went"
    );
    // A session just opened stays, even when it expires before all the others.
    catalog
        .open_session(&[99; 32], &busy.token.id, UnixMillis(later.0 - 5))
        .unwrap();
    assert!(catalog.session_token(&[99; 32], now).unwrap().is_some());
}
