//! The host's policy: which ePID, HwId, count and intervals answer a request, and which
//! requests are refused. Pure: no I/O, no clock, no randomness of its own.

mod count;
mod identity;

use std::sync::Arc;

use rkms_catalog::Catalog;
use rkms_proto::kms::{DecodedRequest, HResult, HostAnswer};

pub use count::{current_count, CountMode};
pub use identity::{parse_hwid, Identity};

/// Settings of the policy, as given on the command line or in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// ePID for every product, replacing the per-profile ones.
    pub epid: Option<String>,
    /// HwId sent in V6 responses.
    pub hwid: [u8; 8],
    /// LCID written into the built-in ePIDs.
    pub lcid: Option<u32>,
    /// How the reported client count is computed.
    pub count: CountMode,
    /// Minutes a client waits before retrying a failed activation.
    pub activation_interval: u32,
    /// Minutes between renewals.
    pub renewal_interval: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            epid: None,
            hwid: identity::DEFAULT_HWID,
            lcid: None,
            count: CountMode::Auto,
            activation_interval: 120,
            renewal_interval: 10080,
        }
    }
}

/// The decision for one request, with what the logs need to name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The answer, or the HRESULT refusing the request.
    pub answer: Result<HostAnswer, HResult>,
    /// Product name for logs (SKU, else KMS item, else application).
    pub product: String,
    /// ePID profile that served the request.
    pub profile: String,
}

/// The policy of a running host.
#[derive(Debug)]
pub struct Policy {
    catalog: Arc<Catalog>,
    config: PolicyConfig,
    identity: Identity,
}

impl Policy {
    /// Builds the policy, checking the configuration against the catalog.
    pub fn new(catalog: Arc<Catalog>, config: PolicyConfig) -> Result<Self, String> {
        let identity = Identity::new(&catalog, config.epid.as_deref(), config.lcid, config.hwid)?;
        Ok(Policy {
            catalog,
            config,
            identity,
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

    /// Decides the answer to a decoded request.
    pub fn decide(&self, request: &DecodedRequest) -> Decision {
        let rq = &request.base;
        let product = self
            .catalog
            .product_name(&rq.sku_id, &rq.kms_id, &rq.application_id);
        let profile = self
            .catalog
            .epid_profile_for(&rq.kms_id, &rq.application_id);
        let answer = HostAnswer {
            epid: self.identity.epid_for(&profile.name).to_string(),
            hwid: self.identity.hwid(),
            current_count: current_count(self.config.count, rq.required_client_count),
            activation_interval: self.config.activation_interval,
            renewal_interval: self.config.renewal_interval,
        };
        Decision {
            answer: Ok(answer),
            product,
            profile: profile.name.clone(),
        }
    }
}
