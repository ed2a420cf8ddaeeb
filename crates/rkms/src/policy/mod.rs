//! The host's policy: which ePID, HwId, count and intervals answer a request, and which
//! requests are refused (PROTOCOL.md §6.1, §8, §9). Pure: the clock and randomness are passed in.

mod count;
mod epid_check;
mod identity;
mod pool;

use std::sync::Arc;

use rand::RngCore;
use rkms_catalog::Catalog;
use rkms_proto::kms::{unix_from_filetime, DecodedRequest, HResult, HostAnswer};

pub use count::{count_warnings, current_count, genuine_count, CountMode};
pub use epid_check::{check_epid, Check};
pub use identity::{
    min_date_unix, min_server_build, parse_hwid, parse_profile_epid, Identity, IdentityConfig,
    ProfileEpid, Randomization, DEFAULT_HWID,
};
pub use pool::{Pools, POOL_LIMIT, WINDOW_SECS};

/// Which KMS IDs are served (vlmcsd -K0..-K3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Allow {
    /// Every KMS ID (-K0).
    #[default]
    Any,
    /// Only KMS IDs in the catalog, with their own application ID (-K1).
    Known,
    /// No retail or preview KMS IDs (-K2).
    Volume,
    /// Only known volume KMS IDs (-K3): closest to a genuine host.
    KnownVolume,
}

impl std::str::FromStr for Allow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "any" | "0" => Ok(Allow::Any),
            "known" | "1" => Ok(Allow::Known),
            "volume" | "2" => Ok(Allow::Volume),
            "known-volume" | "3" => Ok(Allow::KnownVolume),
            _ => Err(format!(
                "'{s}': expected any, known, volume or known-volume (or 0-3 as vlmcsd -K)"
            )),
        }
    }
}

/// Settings of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// ePIDs and HwIds.
    pub identity: IdentityConfig,
    /// How the reported client count is computed.
    pub count: CountMode,
    /// Minutes a client waits before retrying a failed activation.
    pub activation_interval: u32,
    /// Minutes between renewals.
    pub renewal_interval: u32,
    /// Which KMS IDs are served.
    pub allow: Allow,
    /// Refuse requests whose time differs from ours by more than 4 hours.
    pub check_client_time: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            identity: IdentityConfig {
                ndr64: true,
                ..Default::default()
            },
            count: CountMode::Auto,
            activation_interval: 120,
            renewal_interval: 10080,
            allow: Allow::Any,
            check_client_time: false,
        }
    }
}

/// The decision for one request, with what the logs need to name it (the product's name is
/// [`Catalog::product_name`], looked up only when it is logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    /// The answer, or the HRESULT refusing the request.
    pub answer: Result<HostAnswer, HResult>,
    /// ePID profile that served the request.
    pub profile: &'a str,
    /// Why the request was refused.
    pub refusal: Option<String>,
    /// Short code of the refusal, for metrics.
    pub refusal_code: Option<&'static str>,
    /// Product family for metrics: windows-client, windows-server, office or unknown.
    pub family: &'static str,
}

/// Workstation name of the host's own health check: coming over loopback, it is answered but
/// neither counted as a client nor recorded.
pub const SELF_CHECK_WORKSTATION: &str = "rkms-selfcheck";

/// Most a client clock may differ from ours with --check-client-time (seconds).
pub const MAX_CLOCK_SKEW: i64 = 4 * 3600;

/// The policy of a running host.
#[derive(Debug)]
pub struct Policy {
    catalog: Arc<Catalog>,
    config: PolicyConfig,
    identity: Identity,
    pools: Pools,
}

impl Policy {
    /// Builds the policy for a host started at `now_unix`, checking the configuration.
    pub fn new(
        catalog: Arc<Catalog>,
        config: PolicyConfig,
        now_unix: i64,
        rng: &mut dyn RngCore,
    ) -> Result<Self, String> {
        let identity = Identity::new(&catalog, &config.identity, now_unix, rng)?;
        Ok(Policy {
            catalog,
            config,
            identity,
            pools: Pools::new(),
        })
    }

    /// The catalog in use.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The host identity (ePIDs and HwId) in use.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The configuration.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The client pools of the genuine count (seed them from the store at start).
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    /// The pool a KMS ID counts in: its genuine ID when it is an alias, else itself.
    pub fn pool_of(&self, kms_id: &uuid::Uuid) -> uuid::Uuid {
        self.catalog
            .kms_item_resolved(kms_id)
            .map_or(*kms_id, |k| k.id)
    }

    /// Warnings worth printing at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.identity.warnings().to_vec();
        w.extend(count_warnings(self.config.count, &self.catalog));
        w
    }

    /// Decides the answer to a decoded request at time `now_unix`. A request that does not
    /// `count` (the host's own health check) is answered like any other but does not join the
    /// genuine count.
    pub fn decide(
        &self,
        request: &DecodedRequest,
        now_unix: i64,
        count: bool,
        rng: &mut dyn RngCore,
    ) -> Decision<'_> {
        let rq = &request.base;
        let profile = self
            .catalog
            .epid_profile_for(&rq.kms_id, &rq.application_id)
            .name
            .as_str();
        let item = self.catalog.kms_item_resolved(&rq.kms_id);
        let family = family_of(&rq.application_id, item.map(|i| i.display_name.as_str()));
        let refuse = |h: HResult, code: &'static str, why: String| Decision {
            answer: Err(h),
            profile,
            refusal: Some(why),
            refusal_code: Some(code),
            family,
        };
        if self.config.check_client_time {
            let skew = unix_from_filetime(rq.request_time) - now_unix;
            if skew.abs() > MAX_CLOCK_SKEW {
                return refuse(
                    HResult::INVALID_TIMESTAMP,
                    "invalid_timestamp",
                    format!(
                        "client clock is {} off (more than 4 hours)",
                        describe_skew(skew)
                    ),
                );
            }
        }
        let allow = self.config.allow;
        if matches!(allow, Allow::Known | Allow::KnownVolume) {
            match item {
                None => {
                    return refuse(
                        HResult::KMS_ID_MISMATCH,
                        "kms_id_not_served",
                        format!("unknown KMS ID {}", rq.kms_id),
                    )
                }
                Some(i) if i.app_id != rq.application_id => {
                    return refuse(
                        HResult::KMS_ID_MISMATCH,
                        "kms_id_not_served",
                        format!(
                            "KMS ID {} belongs to application {}, not {}",
                            rq.kms_id, i.app_id, rq.application_id
                        ),
                    )
                }
                _ => {}
            }
        }
        if matches!(allow, Allow::Volume | Allow::KnownVolume) {
            if let Some(i) = item.filter(|i| i.is_retail || i.is_preview) {
                let kind = if i.is_retail { "retail" } else { "preview" };
                return refuse(
                    HResult::KMS_ID_MISMATCH,
                    "kms_id_not_served",
                    format!("{kind} KMS ID {} ({})", rq.kms_id, i.display_name),
                );
            }
        }
        let (epid, hwid) = self.identity.answer(profile, now_unix, rng);
        let answer = HostAnswer {
            epid,
            hwid,
            current_count: match self.config.count {
                CountMode::Genuine { start_empty } => {
                    let pool = item.map_or(rq.kms_id, |k| k.id);
                    let distinct = if count {
                        self.pools.observe(pool, rq.cmid, now_unix)
                    } else {
                        self.pools.count(pool, now_unix)
                    };
                    let threshold = item.map_or(rq.required_client_count, |i| i.ncount_policy);
                    genuine_count(distinct, threshold, rq.required_client_count, start_empty)
                }
                mode => current_count(mode, rq.required_client_count),
            },
            activation_interval: self.config.activation_interval,
            renewal_interval: self.config.renewal_interval,
        };
        Decision {
            answer: Ok(answer),
            profile,
            refusal: None,
            refusal_code: None,
            family,
        }
    }
}

fn describe_skew(s: i64) -> String {
    let (h, m) = (s.abs() / 3600, s.abs() % 3600 / 60);
    format!("{h}h{m:02}m {}", if s > 0 { "ahead" } else { "behind" })
}

/// The product family of a request, for metrics.
pub fn family_of(app_id: &uuid::Uuid, kms_name: Option<&str>) -> &'static str {
    const WINDOWS: uuid::Uuid = uuid::Uuid::from_u128(0x55c92734_d682_4d71_983e_d6ec3f16059f);
    const OFFICE_2010: uuid::Uuid = uuid::Uuid::from_u128(0x59a52881_a989_479d_af46_f275c6370663);
    const OFFICE: uuid::Uuid = uuid::Uuid::from_u128(0x0ff1ce15_a989_479d_af46_f275c6370663);
    match *app_id {
        OFFICE | OFFICE_2010 => "office",
        WINDOWS => match kms_name {
            Some(n) if n.contains("Server") => "windows-server",
            _ => "windows-client",
        },
        _ => "unknown",
    }
}
