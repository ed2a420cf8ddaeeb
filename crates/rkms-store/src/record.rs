//! The data the store keeps and is fed: client records, reported activations, list filters.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::health::{ClientState, HealthThresholds};

/// What the store knows about one client machine for one application: one record per
/// (`cmid`, `application_id`), so a machine activating Windows and Office has two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// Client machine ID (CMID) the client sent.
    pub cmid: Uuid,
    /// Application ID (Windows, Office 2010, Office 2013+ …) of the request.
    pub application_id: Uuid,
    /// SKU ID of the latest request.
    pub sku_id: Uuid,
    /// KMS counted ID of the latest request, after alias resolution.
    pub kms_id: Uuid,
    /// Workstation name of the latest request.
    pub workstation: String,
    /// Client licence status of the latest request (0 unlicensed, 1 licensed, 2 initial grace …).
    pub license_status: u32,
    /// Remaining grace time in minutes of the latest request.
    pub grace_minutes: u32,
    /// Whether the latest request said the client is a virtual machine.
    pub is_vm: bool,
    /// Protocol version of the latest request, e.g. `"6.0"`.
    pub protocol: String,
    /// Unix time (seconds) of the earliest request.
    pub first_seen: i64,
    /// Unix time (seconds) of the latest request.
    pub last_seen: i64,
    /// Number of requests recorded.
    pub requests: u64,
    /// Peer address of the latest request, e.g. `"192.0.2.7:50123"`.
    pub last_address: String,
    /// ePID the host answered the latest request with (empty when refused).
    pub last_epid: String,
    /// HRESULT of the latest request: 0 for an activation, else the error sent.
    pub last_hresult: u32,
    /// Unix time (seconds) of the latest successful request (`last_hresult` 0), kept when
    /// later requests are refused; `None` when no request of this record ever succeeded (as
    /// far as the store knows). Its activation runs out 180 days later (see
    /// [`crate::health`]).
    #[serde(default)]
    pub last_activated: Option<i64>,
}

impl ClientRecord {
    /// The record a first activation creates: `requests` 1, `first_seen` = `last_seen` = its time.
    pub fn from_activation(a: &Activation) -> Self {
        Self {
            cmid: a.cmid,
            application_id: a.application_id,
            sku_id: a.sku_id,
            kms_id: a.kms_id,
            workstation: a.workstation.clone(),
            license_status: a.license_status,
            grace_minutes: a.grace_minutes,
            is_vm: a.is_vm,
            protocol: a.protocol.clone(),
            first_seen: a.time,
            last_seen: a.time,
            requests: 1,
            last_address: a.address.clone(),
            last_epid: a.epid.clone(),
            last_hresult: a.hresult,
            last_activated: (a.hresult == 0).then_some(a.time),
        }
    }

    /// Folds a further activation of the same (`cmid`, `application_id`) into this record, the
    /// way every backend's upsert does: `requests` + 1, `first_seen` = the earlier time,
    /// `last_seen` = the later time, and every other field taken from the activation unless it
    /// is older than `last_seen` (activations reported out of order never overwrite newer data);
    /// `last_activated` = the latest successful request's time, whatever the order.
    pub fn merge(&mut self, a: &Activation) {
        self.requests = self.requests.saturating_add(1);
        self.first_seen = self.first_seen.min(a.time);
        let last_activated = latest(self.last_activated, (a.hresult == 0).then_some(a.time));
        if a.time >= self.last_seen {
            let requests = self.requests;
            let first_seen = self.first_seen;
            self.reset_to(a);
            self.requests = requests;
            self.first_seen = first_seen;
        }
        self.last_activated = last_activated;
    }

    /// Makes this record the one [`Self::from_activation`] gives for `a`, reusing the memory
    /// of its strings (an in-memory store recycles the records it forgets this way).
    pub fn reset_to(&mut self, a: &Activation) {
        // Every field named, so that a new field cannot be forgotten here.
        let Self {
            cmid,
            application_id,
            sku_id,
            kms_id,
            workstation,
            license_status,
            grace_minutes,
            is_vm,
            protocol,
            first_seen,
            last_seen,
            requests,
            last_address,
            last_epid,
            last_hresult,
            last_activated,
        } = self;
        *cmid = a.cmid;
        *application_id = a.application_id;
        *sku_id = a.sku_id;
        *kms_id = a.kms_id;
        workstation.clone_from(&a.workstation);
        *license_status = a.license_status;
        *grace_minutes = a.grace_minutes;
        *is_vm = a.is_vm;
        protocol.clone_from(&a.protocol);
        *first_seen = a.time;
        *last_seen = a.time;
        *requests = 1;
        last_address.clone_from(&a.address);
        last_epid.clone_from(&a.epid);
        *last_hresult = a.hresult;
        *last_activated = (a.hresult == 0).then_some(a.time);
    }
}

impl ClientRecord {
    /// Folds another record of the same (`cmid`, `application_id`) into this one, as if every
    /// request it counts had been [`merged`](Self::merge) here: `requests` added up,
    /// `first_seen` the earlier, and the other fields (with `last_seen`) taken from `other`
    /// unless it was last seen before this record (ties take `other`). Used to copy and
    /// import records, and to fold a batch of activations before writing it.
    pub fn absorb(&mut self, other: &ClientRecord) {
        let requests = self.requests.saturating_add(other.requests);
        let first_seen = self.first_seen.min(other.first_seen);
        let last_activated = latest(self.last_activated, other.last_activated);
        if other.last_seen >= self.last_seen {
            *self = other.clone();
        }
        self.requests = requests;
        self.first_seen = first_seen;
        self.last_activated = last_activated;
    }
}

/// The later of two optional times.
fn latest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.max(b)
}

/// One request as the server reports it to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// Client machine ID (CMID).
    pub cmid: Uuid,
    /// Application ID of the request.
    pub application_id: Uuid,
    /// SKU ID of the request.
    pub sku_id: Uuid,
    /// KMS counted ID as the client sent it (readers resolve aliases to count per pool).
    pub kms_id: Uuid,
    /// Workstation name the client sent.
    pub workstation: String,
    /// Licence status the client sent.
    pub license_status: u32,
    /// Remaining grace minutes the client sent.
    pub grace_minutes: u32,
    /// The client's "is a VM" flag.
    pub is_vm: bool,
    /// Protocol version, e.g. `"6.0"`.
    pub protocol: String,
    /// Unix time (seconds) of the request.
    pub time: i64,
    /// Peer address.
    pub address: String,
    /// ePID answered (empty when refused).
    pub epid: String,
    /// HRESULT answered: 0 for an activation.
    pub hresult: u32,
}

/// Which records [`crate::ClientStore::list`] returns and in which order. Every `Some` field
/// (and every set that is not [`IdSet::Any`]) must match; the result is ordered by `sort`
/// (`last_seen` descending by default), ties by `last_seen` descending, then `cmid`, then
/// `application_id`, so pages taken with `limit`/`offset` are stable.
/// [`crate::ClientStore::count_matching`] counts what the same filter matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFilter {
    /// Only records of this KMS counted ID.
    pub kms_id: Option<Uuid>,
    /// Only records of this SKU.
    pub sku_id: Option<Uuid>,
    /// Only records of this application.
    pub application_id: Option<Uuid>,
    /// Only records of this client machine.
    pub cmid: Option<Uuid>,
    /// Only records with `last_seen >= since`.
    pub since: Option<i64>,
    /// Only records whose latest request was activated (`true`: `last_hresult == 0`) or
    /// refused (`false`).
    #[serde(default)]
    pub activated: Option<bool>,
    /// Only records whose application ID is in (or not in) this set.
    #[serde(default)]
    pub applications: IdSet,
    /// Only records whose KMS counted ID is in (or not in) this set.
    #[serde(default)]
    pub kms_ids: IdSet,
    /// Only records matching this search.
    #[serde(default)]
    pub search: Option<Search>,
    /// Only records in this health state at these thresholds.
    #[serde(default)]
    pub state: Option<(ClientState, HealthThresholds)>,
    /// The order (see [`ClientSort`]).
    #[serde(default)]
    pub sort: ClientSort,
    /// Sort ascending instead of descending.
    #[serde(default)]
    pub ascending: bool,
    /// At most this many records.
    pub limit: Option<u64>,
    /// Skip this many records first.
    pub offset: Option<u64>,
}

/// A set of IDs a record's ID must (or must not) be in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdSet {
    /// Any ID.
    #[default]
    Any,
    /// One of these.
    In(Vec<Uuid>),
    /// None of these.
    NotIn(Vec<Uuid>),
}

impl IdSet {
    /// Whether `id` passes.
    pub fn matches(&self, id: &Uuid) -> bool {
        match self {
            Self::Any => true,
            Self::In(ids) => ids.contains(id),
            Self::NotIn(ids) => !ids.contains(id),
        }
    }
}

/// A text search over client records: a record matches when `text` occurs (ASCII
/// case-insensitively) in its workstation name, in the host part of its last address (the
/// port left out: see [`address_host`]) or in its last ePID; or when `text`, hyphens left
/// out, is made of hex digits and begins the CMID's hex form (a CMID or its first digits); or
/// when its SKU, KMS or application ID is one of those listed (the caller lists the IDs whose
/// names match: the store knows no names).
///
/// The database backends index the searched text (SQLite: an FTS5 trigram index;
/// PostgreSQL: a `pg_trgm` index) and the CMIDs (their key index), so a search matching few
/// records reads only those; the index is written only when a searched field changes (a new
/// record, a new workstation name, host or ePID), never on a plain renewal, which is why the
/// address is searched without its port (a client's port changes at every request).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Search {
    /// The text searched (compared in ASCII lower case).
    pub text: String,
    /// SKU IDs that match.
    pub sku_ids: Vec<Uuid>,
    /// KMS counted IDs that match.
    pub kms_ids: Vec<Uuid>,
    /// Application IDs that match.
    pub application_ids: Vec<Uuid>,
}

/// `text` as a SQL `LIKE` pattern matching it anywhere, `%`, `_` and `\` escaped with a
/// backslash (`ESCAPE '\'`): the database backends' test of a searched text.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn like_anywhere(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// Searched texts shorter than this are not looked up in the trigram index (it holds
/// three-character pieces): the backends read the records in the list's order instead,
/// counting matches up to [`MATCH_COUNT_LIMIT`].
pub const SEARCH_INDEX_MIN_LEN: usize = 3;

impl Search {
    /// Whether `r` matches.
    pub fn matches(&self, r: &ClientRecord) -> bool {
        let text = self.text.to_ascii_lowercase();
        let contains = |h: &str| h.to_ascii_lowercase().contains(&text);
        contains(&r.workstation)
            || contains(address_host(&r.last_address))
            || contains(&r.last_epid)
            || self
                .cmid_prefix()
                .is_some_and(|hex| r.cmid.simple().to_string().starts_with(&hex))
            || self.sku_ids.contains(&r.sku_id)
            || self.kms_ids.contains(&r.kms_id)
            || self.application_ids.contains(&r.application_id)
    }

    /// The hex digits (lower case, at most 32) a CMID must begin with, when the text is a
    /// CMID or the beginning of one (hex digits and hyphens, at least one digit).
    pub fn cmid_prefix(&self) -> Option<String> {
        let hex: String = self
            .text
            .chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        (!hex.is_empty() && hex.len() <= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(hex)
    }

    /// The range of 16-byte CMIDs (`from` inclusive, `to` exclusive; `to` `None`: no upper
    /// bound) that begin with [`Self::cmid_prefix`], for a key-index range scan.
    pub fn cmid_range(&self) -> Option<([u8; 16], Option<[u8; 16]>)> {
        let hex = self.cmid_prefix()?;
        let mut digits = [0u8; 32];
        for (d, c) in digits.iter_mut().zip(hex.bytes()) {
            *d = (c as char).to_digit(16).unwrap_or(0) as u8;
        }
        let to_bytes = |digits: &[u8; 32]| {
            let mut out = [0u8; 16];
            for (i, b) in out.iter_mut().enumerate() {
                *b = digits[2 * i] << 4 | digits[2 * i + 1];
            }
            out
        };
        let from = to_bytes(&digits);
        // The next prefix: add one at the last given digit, carrying; none past ffff….
        let mut next = digits;
        let mut i = hex.len();
        let to = loop {
            if i == 0 {
                break None;
            }
            i -= 1;
            if next[i] < 15 {
                next[i] += 1;
                break Some(to_bytes(&next));
            }
            next[i] = 0;
        };
        Some((from, to))
    }
}

/// The host part of a peer address as the store keeps it: `"192.0.2.7:50123"` gives
/// `"192.0.2.7"`, `"[2001:db8::7]:50123"` gives `"2001:db8::7"`; anything else (no port, a
/// bare IPv6 address) is kept whole. What a search matches in an address (SQLite and
/// PostgreSQL compute the same in SQL).
pub fn address_host(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        if let Some(end) = rest.find("]:") {
            return &rest[..end];
        }
        return address;
    }
    match address.split_once(':') {
        Some((host, port)) if !port.contains(':') => host,
        _ => address,
    }
}

/// The column [`ClientFilter`] sorts by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientSort {
    /// Latest request.
    #[default]
    LastSeen,
    /// First request.
    FirstSeen,
    /// Workstation name, ASCII case-insensitively.
    Workstation,
    /// CMID.
    Cmid,
    /// Number of requests.
    Requests,
    /// Last address (bytewise).
    Address,
    /// Protocol version.
    Protocol,
    /// Outcome: activated before refused (ascending).
    Status,
    /// SKU, in the order of this list (e.g. the SKUs sorted by name); SKUs not listed last.
    Sku(Vec<Uuid>),
    /// Last successful activation, so its expiry (ascending: soonest to run out first;
    /// records never activated before every other).
    Expiry,
}

impl ClientFilter {
    /// Whether the filter selects every record (no condition; sort, `limit` and `offset`
    /// aside): its count is then the table's, counted exactly.
    pub fn selects_all(&self) -> bool {
        self.kms_id.is_none()
            && self.sku_id.is_none()
            && self.application_id.is_none()
            && self.cmid.is_none()
            && self.since.is_none()
            && self.activated.is_none()
            && self.applications == IdSet::Any
            && self.kms_ids == IdSet::Any
            && self.search.is_none()
            && self.state.is_none()
    }

    /// Whether `r` passes the filter's conditions (ignoring sort, `limit` and `offset`).
    pub fn matches(&self, r: &ClientRecord) -> bool {
        self.kms_id.is_none_or(|k| r.kms_id == k)
            && self.sku_id.is_none_or(|s| r.sku_id == s)
            && self.application_id.is_none_or(|a| r.application_id == a)
            && self.cmid.is_none_or(|c| r.cmid == c)
            && self.since.is_none_or(|t| r.last_seen >= t)
            && self.activated.is_none_or(|ok| (r.last_hresult == 0) == ok)
            && self.applications.matches(&r.application_id)
            && self.kms_ids.matches(&r.kms_id)
            && self.search.as_ref().is_none_or(|s| s.matches(r))
            && self.state.is_none_or(|(state, t)| t.state(r) == state)
    }

    /// Compares two records in the filter's order (for stores that sort in memory).
    pub fn compare(&self, a: &ClientRecord, b: &ClientRecord) -> std::cmp::Ordering {
        let rank = |list: &[Uuid], r: &ClientRecord| {
            list.iter()
                .position(|s| *s == r.sku_id)
                .unwrap_or(list.len())
        };
        let primary = match &self.sort {
            ClientSort::LastSeen => a.last_seen.cmp(&b.last_seen),
            ClientSort::FirstSeen => a.first_seen.cmp(&b.first_seen),
            ClientSort::Workstation => a
                .workstation
                .to_ascii_lowercase()
                .cmp(&b.workstation.to_ascii_lowercase()),
            ClientSort::Cmid => a.cmid.cmp(&b.cmid),
            ClientSort::Requests => a.requests.cmp(&b.requests),
            ClientSort::Address => a.last_address.cmp(&b.last_address),
            ClientSort::Protocol => a.protocol.cmp(&b.protocol),
            ClientSort::Status => (a.last_hresult != 0).cmp(&(b.last_hresult != 0)),
            ClientSort::Sku(list) => rank(list, a).cmp(&rank(list, b)),
            ClientSort::Expiry => a.last_activated.cmp(&b.last_activated),
        };
        let primary = if self.ascending {
            primary
        } else {
            primary.reverse()
        };
        primary
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.cmid.cmp(&b.cmid))
            .then(a.application_id.cmp(&b.application_id))
    }
}

/// Records [`crate::ClientStore::count_matching`] counts for a filter that selects some
/// records only; beyond it, it stops and reports this number plus one with
/// [`MatchCount::records_capped`] set ("more than"). A whole-table count is exact.
pub const MATCH_COUNT_LIMIT: u64 = 10_000;

/// Distinct machines [`crate::ClientStore::count_matching`] counts exactly; beyond it, it
/// reports this number plus one ("more than").
pub const MACHINES_COUNT_LIMIT: u64 = 100_000;

/// How many records a [`ClientFilter`] matches ([`crate::ClientStore::count_matching`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchCount {
    /// Client records (machine × application).
    pub records: u64,
    /// Distinct client machines (CMIDs) among them, counted up to [`MACHINES_COUNT_LIMIT`]
    /// (`MACHINES_COUNT_LIMIT + 1`: more than that); among the records counted when
    /// `records_capped`.
    pub machines: u64,
    /// The filter selects some records only and more than [`MATCH_COUNT_LIMIT`] match:
    /// counting stopped there, `records` is `MATCH_COUNT_LIMIT + 1` ("more than") and
    /// `machines` a lower bound.
    #[serde(default)]
    pub records_capped: bool,
}

impl MatchCount {
    /// The count of a filter that selects some records only, from the records and machines
    /// counted while reading at most `MATCH_COUNT_LIMIT + 1` of them.
    pub fn capped(records: u64, machines: u64) -> Self {
        Self {
            records: records.min(MATCH_COUNT_LIMIT + 1),
            machines: machines.min(MACHINES_COUNT_LIMIT + 1),
            records_capped: records > MATCH_COUNT_LIMIT,
        }
    }
}

/// A batch of requests as the rows it writes: one client record per (CMID, application), in
/// key order, the requests of each folded in order like successive upserts (an upsert cannot
/// touch a row twice), and one history event per request.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn fold_batch(
    batch: &[crate::Activation],
) -> (Vec<ClientRecord>, Vec<crate::ActivationEvent>) {
    let mut folded: std::collections::BTreeMap<(Uuid, Uuid), ClientRecord> =
        std::collections::BTreeMap::new();
    for a in batch {
        folded
            .entry((a.cmid, a.application_id))
            .and_modify(|r| r.merge(a))
            .or_insert_with(|| ClientRecord::from_activation(a));
    }
    let events = batch
        .iter()
        .map(crate::ActivationEvent::from_activation)
        .collect();
    (folded.into_values().collect(), events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: i64, workstation: &str) -> Activation {
        Activation {
            cmid: Uuid::from_u128(1),
            application_id: Uuid::from_u128(2),
            sku_id: Uuid::from_u128(3),
            kms_id: Uuid::from_u128(4),
            workstation: workstation.into(),
            license_status: 1,
            grace_minutes: 0,
            is_vm: false,
            protocol: "6.0".into(),
            time,
            address: String::new(),
            epid: String::new(),
            hresult: 0,
        }
    }

    #[test]
    fn merge_keeps_newest_fields_and_widest_span() {
        let mut r = ClientRecord::from_activation(&at(100, "A"));
        r.merge(&at(300, "C"));
        r.merge(&at(200, "B"));
        r.merge(&at(50, "Z"));
        assert_eq!((r.first_seen, r.last_seen, r.requests), (50, 300, 4));
        assert_eq!(r.workstation, "C");
        r.merge(&at(300, "D"));
        assert_eq!(
            (r.workstation.as_str(), r.requests),
            ("D", 5),
            "a tie takes the later report"
        );
    }

    /// A record reset to an activation is the record that activation creates, whatever it
    /// held before.
    #[test]
    fn reset_to_gives_the_record_from_activation() {
        let mut r = ClientRecord::from_activation(&at(100, "A long workstation name"));
        r.merge(&at(300, "C"));
        let mut other = at(50, "Z");
        other.hresult = 0xC004_F042;
        other.epid = "a different ePID".into();
        other.address = "192.0.2.9".into();
        other.protocol = "4.0".into();
        other.cmid = Uuid::from_u128(9);
        other.application_id = Uuid::from_u128(10);
        other.sku_id = Uuid::from_u128(11);
        other.kms_id = Uuid::from_u128(12);
        (other.license_status, other.grace_minutes, other.is_vm) = (3, 5, true);
        r.reset_to(&other);
        assert_eq!(r, ClientRecord::from_activation(&other));
        r.reset_to(&at(7, "B"));
        assert_eq!(r, ClientRecord::from_activation(&at(7, "B")));
    }

    #[test]
    fn absorb_is_merge_of_every_request() {
        let reports = [
            at(100, "A"),
            at(300, "C"),
            at(200, "B"),
            at(300, "D"),
            at(50, "Z"),
        ];
        let mut merged = ClientRecord::from_activation(&reports[0]);
        for a in &reports[1..] {
            merged.merge(a);
        }
        // Split anywhere: fold each half, then absorb the second into the first.
        for split in 1..reports.len() {
            let fold = |part: &[Activation]| {
                let mut r = ClientRecord::from_activation(&part[0]);
                for a in &part[1..] {
                    r.merge(a);
                }
                r
            };
            let mut left = fold(&reports[..split]);
            left.absorb(&fold(&reports[split..]));
            assert_eq!(left, merged, "split at {split}");
        }
    }

    #[test]
    fn last_activated_is_the_latest_success_in_any_order() {
        let refused = |time: i64| Activation {
            hresult: 0xC004_F038,
            ..at(time, "R")
        };
        let mut r = ClientRecord::from_activation(&refused(50));
        assert_eq!(r.last_activated, None, "never activated");
        r.merge(&at(100, "A"));
        r.merge(&refused(300));
        assert_eq!((r.last_hresult, r.last_activated), (0xC004_F038, Some(100)));
        r.merge(&at(200, "B"));
        assert_eq!(
            r.last_activated,
            Some(200),
            "out of order, still the latest success"
        );
        r.merge(&at(150, "C"));
        assert_eq!(r.last_activated, Some(200));
        // Absorbing keeps the later success of either side, whichever was seen last.
        let mut newer = ClientRecord::from_activation(&refused(400));
        newer.absorb(&r);
        assert_eq!(
            (newer.last_seen, newer.last_hresult, newer.last_activated),
            (400, 0xC004_F038, Some(200))
        );
        let mut older = r.clone();
        older.absorb(&ClientRecord::from_activation(&refused(500)));
        assert_eq!((older.last_seen, older.last_activated), (500, Some(200)));
    }

    #[test]
    fn filter_matches_every_condition() {
        let r = ClientRecord::from_activation(&at(100, "A"));
        assert!(ClientFilter::default().matches(&r));
        assert!(ClientFilter {
            since: Some(100),
            ..Default::default()
        }
        .matches(&r));
        assert!(!ClientFilter {
            since: Some(101),
            ..Default::default()
        }
        .matches(&r));
        let other = Some(Uuid::from_u128(9));
        assert!(!ClientFilter {
            kms_id: other,
            ..Default::default()
        }
        .matches(&r));
        assert!(!ClientFilter {
            sku_id: other,
            ..Default::default()
        }
        .matches(&r));
        assert!(!ClientFilter {
            cmid: other,
            ..Default::default()
        }
        .matches(&r));
        assert!(!ClientFilter {
            application_id: other,
            ..Default::default()
        }
        .matches(&r));
    }
}
