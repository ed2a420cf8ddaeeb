//! Fleet health in every backend (memory, SQLite, PostgreSQL when `RKMS_TEST_POSTGRES` names
//! a database): records activated at chosen times fall in the expected state, filters by
//! state, the expiry order and the per-state counts agree with the rules of
//! `rkms_store::health`.

mod common;

use std::collections::BTreeMap;

use common::{activation, id, office_app, PgSchema, TempDir};
use rkms_store::{
    Activation, ClientFilter, ClientSort, ClientState, ClientStore, HealthThresholds, MemoryStore,
    PgStore, SqliteStore,
};

const DAY: i64 = 86_400;
const NOW: i64 = 1_800_000_000;
const REFUSED: u32 = 0xC004_F038;

/// Ten machines at chosen times (relative to [`NOW`]), and the state each is in at
/// [`NOW`] with a 7-day renewal interval.
fn fill(store: &dyn ClientStore) -> Vec<(u128, ClientState, Option<i64>)> {
    let at = |n: u128, days_ago: i64| activation(id(n), id(0xa), NOW - days_ago * DAY);
    let refused = |a: Activation| Activation {
        hresult: REFUSED,
        ..a
    };
    let batch = vec![
        at(1, 1),
        at(2, 20),
        at(3, 160),
        at(4, 200),
        // Activated, then refused: failing, but its activation is still known.
        at(5, 2),
        refused(at(5, 1)),
        // Never activated.
        refused(at(6, 3)),
        // A success reported out of order does not move the latest one back.
        at(7, 100),
        at(7, 170),
        Activation {
            application_id: office_app(),
            ..activation(id(8), id(0xd), NOW - 175 * DAY)
        },
        // Exactly at the boundaries.
        at(9, 14),
        at(10, 180),
    ];
    store.record_batch(&batch[..5]).unwrap();
    for a in &batch[5..] {
        store.record(a).unwrap();
    }
    let ago = |d: i64| Some(NOW - d * DAY);
    vec![
        (1, ClientState::Current, ago(1)),
        (2, ClientState::Overdue, ago(20)),
        (3, ClientState::AtRisk, ago(160)),
        (4, ClientState::Lapsed, ago(200)),
        (5, ClientState::Failing, ago(2)),
        (6, ClientState::Failing, None),
        (7, ClientState::Overdue, ago(100)),
        (8, ClientState::AtRisk, ago(175)),
        (9, ClientState::Current, ago(14)),
        (10, ClientState::AtRisk, ago(180)),
    ]
}

fn check(store: &dyn ClientStore) {
    let expected = fill(store);
    let t = HealthThresholds::new(NOW, 7 * 24 * 60);
    let all = store.list(&ClientFilter::default()).unwrap();
    assert_eq!(all.len(), expected.len());
    for (n, state, last_activated) in &expected {
        let r = all.iter().find(|r| r.cmid == id(*n)).unwrap();
        assert_eq!(r.last_activated, *last_activated, "machine {n}");
        assert_eq!(t.state(r), *state, "machine {n}");
    }
    // Filtering by state, in the expiry order (soonest first).
    for state in ClientState::ALL {
        let filter = ClientFilter {
            state: Some((state, t)),
            sort: ClientSort::Expiry,
            ascending: true,
            ..ClientFilter::default()
        };
        let mut want: Vec<(Option<i64>, u128)> = expected
            .iter()
            .filter(|(_, s, _)| *s == state)
            .map(|(n, _, la)| (*la, *n))
            .collect();
        want.sort();
        let got: Vec<u128> = store
            .list(&filter)
            .unwrap()
            .iter()
            .map(|r| r.cmid.as_u128() & 0xff)
            .collect();
        assert_eq!(
            got,
            want.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            "{state}"
        );
        assert_eq!(
            store.count_matching(&filter).unwrap().records,
            want.len() as u64,
            "{state}"
        );
    }
    // The whole list by expiry: never activated first; descending reverses it.
    let order = |ascending: bool| -> Vec<u128> {
        store
            .list(&ClientFilter {
                sort: ClientSort::Expiry,
                ascending,
                ..ClientFilter::default()
            })
            .unwrap()
            .iter()
            .map(|r| r.cmid.as_u128() & 0xff)
            .collect()
    };
    assert_eq!(order(true), [6, 4, 10, 8, 3, 7, 2, 9, 5, 1]);
    assert_eq!(order(false), [1, 5, 9, 2, 7, 3, 8, 10, 4, 6]);
    // A page of the at-risk list, combined with another filter.
    let page = store
        .list(&ClientFilter {
            state: Some((ClientState::AtRisk, t)),
            kms_id: Some(id(0xa)),
            sort: ClientSort::Expiry,
            ascending: true,
            limit: Some(1),
            offset: Some(1),
            ..ClientFilter::default()
        })
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].cmid, id(3));
    // Counts per application, KMS ID and state.
    let counts = store.health_counts(&t).unwrap();
    let mut per_state: BTreeMap<ClientState, u64> = BTreeMap::new();
    for c in &counts {
        assert!(c.records > 0);
        *per_state.entry(c.state).or_default() += c.records;
    }
    let mut want: BTreeMap<ClientState, u64> = BTreeMap::new();
    for (_, s, _) in &expected {
        *want.entry(*s).or_default() += 1;
    }
    assert_eq!(per_state, want);
    let office: Vec<_> = counts
        .iter()
        .filter(|c| c.application_id == office_app())
        .map(|c| (c.kms_id, c.state, c.records))
        .collect();
    assert_eq!(office, [(id(0xd), ClientState::AtRisk, 1)]);
    // Ordered by application, KMS ID and state.
    let mut sorted = counts.clone();
    sorted.sort_by_key(|c| (c.application_id, c.kms_id, c.state));
    assert_eq!(counts, sorted);
    // A month later, everything has moved on.
    let later = HealthThresholds::new(NOW + 30 * DAY, 7 * 24 * 60);
    let lapsed = store
        .count_matching(&ClientFilter {
            state: Some((ClientState::Lapsed, later)),
            ..ClientFilter::default()
        })
        .unwrap();
    assert_eq!(lapsed.records, 4, "machines 3, 4, 8 and 10");
    // A renewal interval of 30 days makes machine 2 current again.
    let slow = HealthThresholds::new(NOW, 30 * 24 * 60);
    let current = store
        .list(&ClientFilter {
            state: Some((ClientState::Current, slow)),
            sort: ClientSort::Expiry,
            ascending: true,
            ..ClientFilter::default()
        })
        .unwrap();
    assert_eq!(
        current.iter().map(|r| r.cmid).collect::<Vec<_>>(),
        [id(2), id(9), id(1)]
    );
}

#[test]
fn memory_store_states() {
    check(&MemoryStore::new());
}

#[test]
fn sqlite_store_states() {
    let dir = TempDir::new("health");
    check(&SqliteStore::open(&dir.join("clients.db")).unwrap());
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn postgres_store_states() {
    let Some(schema) = PgSchema::new("health") else {
        return;
    };
    check(&PgStore::open(schema.url()).unwrap());
}

/// The default `health_counts` (reading every record) and the SQL of the database backends
/// agree on a store with some of everything.
#[test]
fn grouped_counts_match_the_reference_semantics() {
    let dir = TempDir::new("health-counts");
    let store = SqliteStore::open(&dir.join("clients.db")).unwrap();
    common::fill(&store);
    let memory = MemoryStore::new();
    common::fill(&memory);
    for now in [
        1_799_971_200 - DAY,
        1_799_971_200 + 10 * DAY,
        NOW + 400 * DAY,
    ] {
        for minutes in [60, 7 * 24 * 60] {
            let t = HealthThresholds::new(now, minutes);
            assert_eq!(
                store.health_counts(&t).unwrap(),
                memory.health_counts(&t).unwrap()
            );
        }
    }
}
