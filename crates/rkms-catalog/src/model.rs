//! Typed records of the product catalog, one struct per section of `products.json`.
//!
//! Only the fields the emulator uses are kept; the file's provenance fields (`vlmcsd_*`,
//! `pykms_*`, `note`, `sources`, …) stay in the JSON text. Field names follow the JSON keys.

use time::Date;
use uuid::Uuid;

/// A KMS application (`applications[]`): Windows, Office 2010 or Office 2013+.
///
/// Clients are counted per application, and a request whose KMS ID is unknown is answered
/// with the application's default ePID profile (PROTOCOL.md §6.1 step 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Application ID, as sent in the request's `ApplicationID` field.
    pub id: Uuid,
    /// Human-readable name, e.g. `Office 2013+`.
    pub name: String,
    /// Name of the ePID profile used for unknown KMS IDs of this application.
    pub default_epid_profile: String,
    /// Size of vlmcsd's CMID list for this application (PROTOCOL.md §9.3): 50 or 10.
    pub vlmcsd_client_list_size: u32,
    /// Minimum client count reported for this application (PROTOCOL.md §9.2).
    pub min_active_clients: u32,
}

/// An ePID profile (`epid_profiles[]`): the parameters of one CSVLK "slot" (PROTOCOL.md §8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpidProfile {
    /// Profile name used in configuration, e.g. `Windows` or `Office2019` (unique,
    /// compared case-insensitively).
    pub name: String,
    /// Human-readable name of the CSVLK behind the profile, e.g. `Windows Server 2025`.
    pub display_name: String,
    /// Group ID of the CSVLK (ePID field 2).
    pub group_id: u32,
    /// Lowest product key ID of the CSVLK (ePID fields 3 and 4).
    pub min_key_id: u32,
    /// Highest product key ID of the CSVLK (`>= min_key_id`).
    pub max_key_id: u32,
    /// Earliest activation date of an ePID for this profile.
    pub release_date: Date,
    /// The built-in ePID used when randomisation is off (PROTOCOL.md §8.5, level 0).
    pub default_epid: String,
    /// Activation ID of the CSVLK the profile describes.
    pub csvlk_id: Uuid,
    /// Host builds that can hold this CSVLK (all present in the host build table).
    pub valid_host_builds: Vec<u32>,
}

/// A known CSVLK, i.e. KMS host key (`csvlks[]`).
///
/// Several fields are unknown for some historical keys and are therefore optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csvlk {
    /// Activation ID of the CSVLK; `None` where no source gives it.
    pub id: Option<Uuid>,
    /// Human-readable name, e.g. `Windows Server 2022 (Azure-only)`.
    pub display_name: String,
    /// Name of the ePID profile this CSVLK backs, if it backs one.
    pub epid_profile: Option<String>,
    /// Group ID, if known.
    pub group_id: Option<u32>,
    /// Lowest product key ID, if known.
    pub min_key_id: Option<u32>,
    /// Highest product key ID, if known (`>= min_key_id` when both are known).
    pub max_key_id: Option<u32>,
    /// Release date, if known.
    pub release_date: Option<Date>,
    /// Whether this is a Microsoft-internal lab key.
    pub is_lab: bool,
    /// Whether this is a pre-release key.
    pub is_preview: bool,
    /// A built-in ePID for this CSVLK, if the file has one.
    pub default_epid: Option<String>,
    /// Host builds that can hold this CSVLK (all present in the host build table).
    pub valid_host_builds: Vec<u32>,
    /// KMS counted IDs this CSVLK activates (not required to be in the KMS item table).
    pub activates_kms_ids: Vec<Uuid>,
}

/// A KMS counted ID (`kms_items[]`): what a request's `KmsCountedID` is looked up in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsItem {
    /// KMS counted ID.
    pub id: Uuid,
    /// Human-readable name, e.g. `Office 2019`.
    pub display_name: String,
    /// ID of the application this KMS ID belongs to.
    pub app_id: Uuid,
    /// Activation threshold (`NCountPolicy`): 25 for Windows clients, 5 for servers and Office.
    pub ncount_policy: u32,
    /// KMS protocol major version clients of this product use (4, 5 or 6).
    pub default_protocol: u16,
    /// Whether this is a retail KMS ID (refused with whitelisting level 2).
    pub is_retail: bool,
    /// Whether this is a preview KMS ID (refused with whitelisting level 2).
    pub is_preview: bool,
    /// Name of the ePID profile answering this KMS ID.
    pub epid_profile: String,
    /// For an alias (an ID py-kms generated), the genuine KMS item it stands for.
    pub alias_of: Option<Uuid>,
}

impl KmsItem {
    /// Whether this item is an alias of another KMS item (`alias_of` is set).
    pub fn is_alias(&self) -> bool {
        self.alias_of.is_some()
    }
}

/// A SKU, i.e. activation ID (`sku_items[]`); used for logging and product selection only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku {
    /// SKU (activation) ID.
    pub id: Uuid,
    /// Human-readable edition name, e.g. `Windows 10/11 Pro`.
    pub display_name: String,
    /// ID of the application the SKU belongs to.
    pub app_id: Uuid,
    /// The SKU's genuine KMS counted ID.
    pub kms_id: Uuid,
    /// The GVLK (KMS client setup key) in `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX` form, if known.
    pub gvlk: Option<String>,
    /// Whether this is a retail SKU.
    pub is_retail: bool,
    /// Whether this is a preview SKU.
    pub is_preview: bool,
    /// KMS protocol major version clients of this SKU use (4, 5 or 6).
    pub default_protocol: u16,
    /// Activation threshold the client sends as `RequiredClientCount`.
    pub ncount_policy: u32,
    /// Other names the reference implementations use for this SKU (vlmcsd's, py-kms'), when
    /// they differ from `display_name`; accepted by [`crate::Catalog::find_product`].
    pub aliases: Vec<String>,
}

/// A Windows build a KMS host may claim to run (`host_builds[]`, PROTOCOL.md §8.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBuild {
    /// Build number, e.g. 20348.
    pub build: u32,
    /// Human-readable name, e.g. `Windows Server 2022`.
    pub display_name: String,
    /// Platform ID used as ePID field 1.
    pub platform_id: u32,
    /// Release date: the lower bound for ePID activation dates on this build.
    pub release_date: Date,
    /// Whether the build is suitable for generated ePIDs.
    pub use_for_epid: bool,
    /// Whether a server edition exists for this build.
    pub may_be_server: bool,
    /// Whether hosts on this build negotiate NDR64.
    pub uses_ndr64: bool,
}
