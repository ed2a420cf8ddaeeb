//! The KMS product catalog: applications, ePID profiles, CSVLKs, KMS counted IDs, SKUs with
//! their GVLKs, host builds and LCIDs, as described by the spec pack's `products.json`
//! (PROTOCOL.md §6.1, §8, §9).
//!
//! [`Catalog::builtin`] gives the embedded copy of `products.json`; [`Catalog::from_json_str`]
//! loads another full file, and [`Catalog::extended_with`] merges a user file into a catalog.
//!
//! Every catalog is validated when loaded, and refused with a [`CatalogError`] naming the
//! section and entry if any rule fails:
//!
//! * GUIDs parse and are unique within their section (compared as [`uuid::Uuid`]); ePID profile
//!   names are unique case-insensitively; host builds and LCIDs are unique;
//! * dates are `YYYY-MM-DD`; `min_key_id <= max_key_id`; present GVLKs have the form
//!   `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX` (`0-9`, `A-Z`);
//! * every SKU's `kms_id` is a KMS item and its `app_id` an application; every KMS item's
//!   `app_id` is an application and its `epid_profile` a profile; `alias_of` names a KMS item
//!   that is not an alias; every application's `default_epid_profile` and every CSVLK's
//!   `epid_profile` is a profile; every `valid_host_builds` entry is a host build;
//! * a profile named `Windows` exists, and the host build and LCID lists are not empty.
//!
//! CSVLKs' `activates_kms_ids` and profiles' `csvlk_id` are not cross-checked (the built-in
//! data lists a Vista pre-release counted ID that has no KMS item).
//!
//! [`render`] turns SKUs into the text table, JSON and client activation guide the command
//! line prints.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod load;
pub mod lookup;
pub mod model;
pub mod render;
pub mod search;

pub use error::{CatalogError, Section};
pub use load::{builtin_products_json, is_product_key_format};
pub use lookup::{Catalog, FALLBACK_EPID_PROFILE};
pub use model::{Application, Csvlk, EpidProfile, HostBuild, KmsItem, Sku};
pub use render::GuideError;
pub use search::{
    name_matches, pykms_client_mode, FindError, MAX_CANDIDATES, MAX_SUGGESTIONS, PYKMS_CLIENT_MODES,
};
