//! Behaviour every `ClientStore` backend must have, written once and run for memory, SQLite
//! and PostgreSQL (the latter when `RKMS_TEST_POSTGRES` names a database: see
//! `scripts/with-postgres.sh`; skipped otherwise).

mod common;

use common::{activation, id, office_app, windows_app, TempDir};
use rkms_store::count::{active_clients, COUNT_WINDOW_SECS};
use rkms_store::{
    Activation, ActivationEvent, ClientFilter, ClientRecord, ClientStore, DailyCount,
};
use uuid::Uuid;

fn only(store: &dyn ClientStore, a: &Activation) -> ClientRecord {
    let filter = ClientFilter {
        cmid: Some(a.cmid),
        application_id: Some(a.application_id),
        ..ClientFilter::default()
    };
    let mut records = store.list(&filter).unwrap();
    assert_eq!(
        records.len(),
        1,
        "one record for ({}, {})",
        a.cmid,
        a.application_id
    );
    records.remove(0)
}

fn upsert_semantics(store: &dyn ClientStore) {
    let first = activation(id(1), id(0xa), 1_000);
    store.record(&first).unwrap();
    let r = only(store, &first);
    assert_eq!(r, ClientRecord::from_activation(&first));
    assert_eq!((r.requests, r.first_seen, r.last_seen), (1, 1_000, 1_000));

    let second = Activation {
        sku_id: id(0x5d),
        workstation: "RENAMED".into(),
        license_status: 1,
        grace_minutes: 250_000,
        is_vm: true,
        protocol: "5.0".into(),
        time: 2_000,
        address: "[2001:db8::7]:61000".into(),
        epid: "second-epid".into(),
        hresult: 0xC004_F038,
        ..first.clone()
    };
    store.record(&second).unwrap();
    let r = only(store, &first);
    assert_eq!(r.requests, 2);
    assert_eq!(r.first_seen, 1_000, "first_seen kept");
    assert_eq!(r.last_seen, 2_000);
    assert_eq!(r.sku_id, id(0x5d));
    assert_eq!(r.workstation, "RENAMED");
    assert_eq!(
        (r.license_status, r.grace_minutes, r.is_vm),
        (1, 250_000, true)
    );
    assert_eq!(r.protocol, "5.0");
    assert_eq!(r.last_address, "[2001:db8::7]:61000");
    assert_eq!(r.last_epid, "second-epid");
    assert_eq!(r.last_hresult, 0xC004_F038);

    // Reported out of order: counted, but does not overwrite the newer data.
    let late = Activation {
        time: 1_500,
        workstation: "STALE".into(),
        hresult: 0,
        ..first.clone()
    };
    store.record(&late).unwrap();
    let r = only(store, &first);
    assert_eq!((r.requests, r.first_seen, r.last_seen), (3, 1_000, 2_000));
    assert_eq!(r.workstation, "RENAMED");
    assert_eq!(r.last_hresult, 0xC004_F038);

    // Older than anything seen: moves first_seen back.
    store
        .record(&Activation {
            time: 500,
            ..first.clone()
        })
        .unwrap();
    let r = only(store, &first);
    assert_eq!((r.requests, r.first_seen, r.last_seen), (4, 500, 2_000));
    assert_eq!(store.count().unwrap(), 1);
}

fn one_record_per_cmid_and_application(store: &dyn ClientStore) {
    let windows = activation(id(7), id(0xa), 100);
    let office = Activation {
        application_id: office_app(),
        kms_id: id(0xb),
        ..windows.clone()
    };
    store.record(&windows).unwrap();
    store.record(&office).unwrap();
    store.record(&windows).unwrap();
    assert_eq!(store.count().unwrap(), 2);
    let all = store
        .list(&ClientFilter {
            cmid: Some(id(7)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(only(store, &windows).requests, 2);
    assert_eq!(only(store, &office).requests, 1);
    assert_eq!(only(store, &office).kms_id, id(0xb));
}

fn extreme_values_round_trip(store: &dyn ClientStore) {
    let a = Activation {
        workstation: "ПК-Бухгалтерия-01 🖥".into(),
        license_status: u32::MAX,
        grace_minutes: u32::MAX,
        is_vm: true,
        protocol: String::new(),
        time: -5,
        address: String::new(),
        epid: String::new(),
        hresult: u32::MAX,
        ..activation(Uuid::max(), Uuid::nil(), 0)
    };
    store.record(&a).unwrap();
    assert_eq!(only(store, &a), ClientRecord::from_activation(&a));
}

/// Any stored time, however absurd, gives daily counts (no overflow, no error).
fn extreme_times_give_daily_counts(store: &dyn ClientStore) {
    for (i, time) in [i64::MIN, i64::MIN + 1, -1, i64::MAX]
        .into_iter()
        .enumerate()
    {
        store
            .record(&activation(id(i as u128 + 1), id(0xa), time))
            .unwrap();
    }
    let days: Vec<(i64, u64)> = store
        .daily_counts(i64::MIN)
        .unwrap()
        .iter()
        .map(|c| (c.day, c.count))
        .collect();
    let earliest = rkms_store::history::EARLIEST_DAY;
    assert_eq!(
        days,
        [
            (earliest, 2),
            (-86_400, 1),
            (i64::MAX - i64::MAX % 86_400, 1)
        ]
    );
    assert_eq!(rkms_store::day_start(i64::MIN), earliest);
    assert_eq!(store.activations_since(i64::MIN).unwrap(), 4);
}

fn distinct_clients_since(store: &dyn ClientStore) {
    let (kms_a, kms_b) = (id(0xa), id(0xb));
    let now = 10 * COUNT_WINDOW_SECS;
    let cutoff = now - COUNT_WINDOW_SECS;
    // Three recent successful clients of A; client 1 also for Office mapped to the same KMS ID.
    for n in 1..=3 {
        store
            .record(&activation(id(n), kms_a, now - 100 * n as i64))
            .unwrap();
    }
    store
        .record(&Activation {
            application_id: office_app(),
            ..activation(id(1), kms_a, now)
        })
        .unwrap();
    // Exactly at the cutoff still counts; one second before does not.
    store.record(&activation(id(4), kms_a, cutoff)).unwrap();
    store.record(&activation(id(5), kms_a, cutoff - 1)).unwrap();
    // Refused clients do not count, whatever happened before.
    store
        .record(&Activation {
            hresult: 0xC004_F038,
            ..activation(id(6), kms_a, now)
        })
        .unwrap();
    store.record(&activation(id(7), kms_a, now - 10)).unwrap();
    store
        .record(&Activation {
            hresult: 0xC004_F038,
            ..activation(id(7), kms_a, now)
        })
        .unwrap();
    // Refused earlier, then activated: counts.
    store
        .record(&Activation {
            hresult: 0xC004_F038,
            ..activation(id(8), kms_a, now - 10)
        })
        .unwrap();
    store.record(&activation(id(8), kms_a, now)).unwrap();
    // Other KMS ID.
    store.record(&activation(id(20), kms_b, now)).unwrap();
    store.record(&activation(id(21), kms_b, now)).unwrap();

    assert_eq!(store.distinct_clients_since(&kms_a, cutoff).unwrap(), 5); // 1, 2, 3, 4, 8
    assert_eq!(store.distinct_clients_since(&kms_b, cutoff).unwrap(), 2);
    assert_eq!(store.distinct_clients_since(&id(0xc), cutoff).unwrap(), 0);
    assert_eq!(store.distinct_clients_since(&kms_a, i64::MIN).unwrap(), 6);
    assert_eq!(store.distinct_clients_since(&kms_a, now + 1).unwrap(), 0);
    assert_eq!(active_clients(store, &kms_a, now).unwrap(), 5);
    assert_eq!(
        active_clients(store, &kms_b, now + COUNT_WINDOW_SECS + 1).unwrap(),
        0
    );
}

fn record_batch(store: &dyn ClientStore) {
    store.record_batch(&[]).unwrap();
    let batch: Vec<Activation> = (0..5)
        .map(|n| activation(id(n % 3), id(0xa), 100 + n as i64))
        .collect();
    store.record_batch(&batch).unwrap();
    assert_eq!(store.count().unwrap(), 3);
    let r = only(store, &batch[0]);
    assert_eq!((r.requests, r.first_seen, r.last_seen), (2, 100, 103));
}

fn prune(store: &dyn ClientStore) {
    for (n, time) in [10, 20, 30, 40].into_iter().enumerate() {
        store
            .record(&activation(id(n as u128), id(0xa), time))
            .unwrap();
    }
    assert_eq!(store.prune_older_than(10).unwrap(), 0);
    assert_eq!(store.prune_older_than(30).unwrap(), 2);
    assert_eq!(store.count().unwrap(), 2);
    let left: Vec<i64> = store
        .list(&ClientFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.last_seen)
        .collect();
    assert_eq!(left, [40, 30]);
    assert_eq!(store.prune_older_than(30).unwrap(), 0);
    assert_eq!(store.prune_older_than(i64::MAX).unwrap(), 2);
    assert_eq!(store.count().unwrap(), 0);
    assert!(store.list(&ClientFilter::default()).unwrap().is_empty());
}

fn list_filters_and_pagination(store: &dyn ClientStore) {
    // 12 records: kms alternates a/b, sku cycles over 3, times 100..=210 by 10 except that
    // client 6 is at 150 like client 5 (a tie).
    for n in 0..12u128 {
        let time = if n == 6 { 150 } else { 100 + 10 * n as i64 };
        let a = Activation {
            kms_id: if n % 2 == 0 { id(0xa) } else { id(0xb) },
            sku_id: id(0x50 + n % 3),
            ..activation(id(n), id(0), time)
        };
        store.record(&a).unwrap();
    }
    let all = store.list(&ClientFilter::default()).unwrap();
    assert_eq!(all.len(), 12);
    let times: Vec<i64> = all.iter().map(|r| r.last_seen).collect();
    assert_eq!(
        times,
        [210, 200, 190, 180, 170, 150, 150, 140, 130, 120, 110, 100]
    );
    // Ties are ordered by CMID.
    assert_eq!((all[5].cmid, all[6].cmid), (id(5), id(6)));

    let mut paged = Vec::new();
    for page in 0..4 {
        let filter = ClientFilter {
            limit: Some(5),
            offset: Some(page * 5),
            ..Default::default()
        };
        let got = store.list(&filter).unwrap();
        assert_eq!(got.len(), [5, 5, 2, 0][page as usize]);
        paged.extend(got);
    }
    assert_eq!(paged, all);
    let tail = store
        .list(&ClientFilter {
            offset: Some(10),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(tail, all[10..]);
    assert!(store
        .list(&ClientFilter {
            limit: Some(0),
            ..Default::default()
        })
        .unwrap()
        .is_empty());
    let huge = ClientFilter {
        limit: Some(u64::MAX),
        offset: Some(u64::MAX),
        ..Default::default()
    };
    assert!(store.list(&huge).unwrap().is_empty());

    let by_kms = store
        .list(&ClientFilter {
            kms_id: Some(id(0xb)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_kms.len(), 6);
    assert!(by_kms.iter().all(|r| r.kms_id == id(0xb)));
    let by_sku = store
        .list(&ClientFilter {
            sku_id: Some(id(0x51)),
            ..Default::default()
        })
        .unwrap();
    let cmids: Vec<_> = by_sku.iter().map(|r| r.cmid).collect();
    assert_eq!(cmids, [id(10), id(7), id(4), id(1)]);
    let since = store
        .list(&ClientFilter {
            since: Some(190),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(since.len(), 3);
    let combined = ClientFilter {
        kms_id: Some(id(0xa)),
        sku_id: Some(id(0x50)),
        since: Some(120),
        limit: Some(1),
        offset: Some(1),
        ..Default::default()
    };
    // kms a and sku 0x50: n = 0, 6; since 120 leaves n = 6 only → offset 1 is empty.
    assert!(store.list(&combined).unwrap().is_empty());
    let combined = ClientFilter {
        offset: None,
        ..combined
    };
    assert_eq!(store.list(&combined).unwrap()[0].cmid, id(6));
    let by_cmid = store
        .list(&ClientFilter {
            cmid: Some(id(3)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_cmid.len(), 1);
    let by_app = ClientFilter {
        application_id: Some(office_app()),
        ..Default::default()
    };
    assert!(store.list(&by_app).unwrap().is_empty());
    let by_app = ClientFilter {
        application_id: Some(windows_app()),
        ..Default::default()
    };
    assert_eq!(store.list(&by_app).unwrap().len(), 12);
}

fn history_is_kept_per_request(store: &dyn ClientStore) {
    assert!(store.recent_activations(20).unwrap().is_empty());
    let day = 1_799_971_200; // a UTC midnight
    let first = activation(id(1), id(0xa), day + 10);
    let refused = Activation {
        hresult: 0xC004_F042,
        workstation: "RENAMED".into(),
        ..activation(id(1), id(0xa), day + 20)
    };
    let office = Activation {
        application_id: office_app(),
        ..activation(id(1), id(0xb), day + 20)
    };
    let other = activation(id(2), id(0xa), day + 86_400 + 5);
    store.record(&first).unwrap();
    store
        .record_batch(&[refused.clone(), office.clone(), other.clone()])
        .unwrap();
    // Out of order: older than what the record holds, but still a request of the history.
    let late = activation(id(1), id(0xa), day + 15);
    store.record(&late).unwrap();

    let history = store.history(&id(1), 100).unwrap();
    let times: Vec<i64> = history.iter().map(|e| e.time).collect();
    assert_eq!(times, [day + 20, day + 20, day + 15, day + 10]);
    assert_eq!(
        history[0],
        ActivationEvent::from_activation(&office),
        "ties: the later recorded first"
    );
    assert_eq!(history[1], ActivationEvent::from_activation(&refused));
    assert!(!history[1].succeeded());
    assert_eq!(history[1].workstation, "RENAMED");
    assert_eq!(store.history(&id(1), 2).unwrap(), history[..2]);
    assert!(store.history(&id(9), 10).unwrap().is_empty());

    let recent = store.recent_activations(2).unwrap();
    assert_eq!(recent[0], ActivationEvent::from_activation(&other));
    assert_eq!(recent[1], history[0]);
    assert_eq!(store.recent_activations(100).unwrap().len(), 5);

    assert_eq!(store.activations_since(i64::MIN).unwrap(), 5);
    assert_eq!(store.activations_since(day + 15).unwrap(), 4);
    assert_eq!(store.activations_since(day + 86_400).unwrap(), 1);

    let counts = store.daily_counts(i64::MIN).unwrap();
    let (w, o) = (windows_app(), office_app());
    let mut expected = vec![
        DailyCount {
            day,
            application_id: w,
            kms_id: id(0xa),
            succeeded: false,
            count: 1,
        },
        DailyCount {
            day,
            application_id: w,
            kms_id: id(0xa),
            succeeded: true,
            count: 2,
        },
        DailyCount {
            day,
            application_id: o,
            kms_id: id(0xb),
            succeeded: true,
            count: 1,
        },
        DailyCount {
            day: day + 86_400,
            application_id: w,
            kms_id: id(0xa),
            succeeded: true,
            count: 1,
        },
    ];
    // Within a day, applications are ordered by their ID.
    if o < w {
        expected.swap(0, 2);
        expected.swap(1, 2);
    }
    assert_eq!(counts, expected);
    assert_eq!(store.daily_counts(day + 86_400).unwrap(), expected[3..]);

    // Pruning drops old events with the old records.
    assert_eq!(store.prune_older_than(day + 16).unwrap(), 0);
    assert_eq!(store.activations_since(i64::MIN).unwrap(), 3);
    assert_eq!(store.history(&id(1), 10).unwrap().len(), 2);
    assert_eq!(store.prune_older_than(day + 86_400).unwrap(), 2);
    assert_eq!(store.recent_activations(10).unwrap().len(), 1);
    store.probe_writable().unwrap();
}

macro_rules! for_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[test]
            fn $name() {
                super::$name(&rkms_store::MemoryStore::new());
            })*
        }
        mod sqlite {
            $(#[test]
            fn $name() {
                let dir = super::TempDir::new(stringify!($name));
                let store = rkms_store::SqliteStore::open(&dir.join("clients.db")).unwrap();
                super::$name(&store);
            })*
        }
        mod postgres {
            $(#[test]
            #[cfg_attr(
                not(rkms_test_postgres),
                ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
            )]
            fn $name() {
                let Some(schema) = super::common::PgSchema::new(stringify!($name)) else {
                    return;
                };
                let store = rkms_store::PgStore::open(schema.url()).unwrap();
                super::$name(&store);
            })*
        }
    };
}

for_every_backend!(
    upsert_semantics,
    one_record_per_cmid_and_application,
    extreme_values_round_trip,
    extreme_times_give_daily_counts,
    distinct_clients_since,
    record_batch,
    prune,
    list_filters_and_pagination,
    history_is_kept_per_request,
);

#[test]
fn memory_store_is_bounded() {
    let store = rkms_store::MemoryStore::new();
    let kms = uuid::Uuid::from_u128(7);
    for i in 0..(rkms_store::MEMORY_CLIENT_LIMIT as u128 + 5_000) {
        let a = common::activation(uuid::Uuid::from_u128(i + 1), kms, 1_700_000_000 + i as i64);
        rkms_store::ClientStore::record(&store, &a).unwrap();
    }
    let n = rkms_store::ClientStore::count(&store).unwrap() as usize;
    assert!(n <= rkms_store::MEMORY_CLIENT_LIMIT, "{n} records kept");
    // The most recent clients are the ones kept.
    let newest = uuid::Uuid::from_u128(rkms_store::MEMORY_CLIENT_LIMIT as u128 + 5_000);
    let filter = rkms_store::ClientFilter {
        cmid: Some(newest),
        ..Default::default()
    };
    assert_eq!(
        rkms_store::ClientStore::list(&store, &filter)
            .unwrap()
            .len(),
        1
    );
    let oldest = rkms_store::ClientFilter {
        cmid: Some(uuid::Uuid::from_u128(1)),
        ..Default::default()
    };
    assert!(rkms_store::ClientStore::list(&store, &oldest)
        .unwrap()
        .is_empty());
}
