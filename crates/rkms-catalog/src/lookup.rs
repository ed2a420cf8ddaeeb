//! The [`Catalog`] type and its lookups by ID, profile name and host build.

use std::collections::HashMap;

use time::Date;
use uuid::Uuid;

use crate::model::{Application, Csvlk, EpidProfile, HostBuild, KmsItem, Sku};

/// Name of the ePID profile used when neither the KMS ID nor the application is known.
pub const FALLBACK_EPID_PROFILE: &str = "Windows";

/// A validated product catalog.
///
/// Obtain one with [`Catalog::builtin`], [`Catalog::from_json_str`] or
/// [`Catalog::extended_with`]; every cross-reference in it resolves (see the crate docs for the
/// rules), so the lookups that return plain references cannot fail.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(crate) applications: Vec<Application>,
    pub(crate) epid_profiles: Vec<EpidProfile>,
    pub(crate) csvlks: Vec<Csvlk>,
    pub(crate) kms_items: Vec<KmsItem>,
    pub(crate) skus: Vec<Sku>,
    /// Sorted by build number, non-empty.
    pub(crate) host_builds: Vec<HostBuild>,
    pub(crate) lcids: Vec<u32>,
    pub(crate) index: Index,
}

/// Hash indexes into the record vectors.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub(crate) applications: HashMap<Uuid, usize>,
    /// Keyed by the lower-cased profile name.
    pub(crate) epid_profiles: HashMap<String, usize>,
    pub(crate) csvlks: HashMap<Uuid, usize>,
    pub(crate) kms_items: HashMap<Uuid, usize>,
    pub(crate) skus: HashMap<Uuid, usize>,
}

/// Case-folds a name for case-insensitive comparison.
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

impl Index {
    pub(crate) fn build(
        applications: &[Application],
        epid_profiles: &[EpidProfile],
        csvlks: &[Csvlk],
        kms_items: &[KmsItem],
        skus: &[Sku],
    ) -> Index {
        fn by<T, K: std::hash::Hash + Eq>(
            items: &[T],
            key: impl Fn(&T) -> Option<K>,
        ) -> HashMap<K, usize> {
            items
                .iter()
                .enumerate()
                .filter_map(|(i, t)| key(t).map(|k| (k, i)))
                .collect()
        }
        Index {
            applications: by(applications, |a| Some(a.id)),
            epid_profiles: by(epid_profiles, |p| Some(fold(&p.name))),
            csvlks: by(csvlks, |c| c.id),
            kms_items: by(kms_items, |k| Some(k.id)),
            skus: by(skus, |s| Some(s.id)),
        }
    }
}

impl Catalog {
    /// The application with this ID.
    pub fn application(&self, id: &Uuid) -> Option<&Application> {
        self.index
            .applications
            .get(id)
            .map(|&i| &self.applications[i])
    }

    /// The KMS item with this ID as stored, which may be an alias (see
    /// [`Catalog::kms_item_resolved`]).
    pub fn kms_item(&self, id: &Uuid) -> Option<&KmsItem> {
        self.index.kms_items.get(id).map(|&i| &self.kms_items[i])
    }

    /// The genuine KMS item for this ID: an alias item is replaced by the item its `alias_of`
    /// names (validation guarantees that one exists and is not an alias itself).
    pub fn kms_item_resolved(&self, id: &Uuid) -> Option<&KmsItem> {
        let item = self.kms_item(id)?;
        match item.alias_of {
            Some(target) => self.kms_item(&target),
            None => Some(item),
        }
    }

    /// The SKU with this activation ID.
    pub fn sku(&self, id: &Uuid) -> Option<&Sku> {
        self.index.skus.get(id).map(|&i| &self.skus[i])
    }

    /// The CSVLK with this activation ID (CSVLKs without a known ID cannot be looked up).
    pub fn csvlk(&self, id: &Uuid) -> Option<&Csvlk> {
        self.index.csvlks.get(id).map(|&i| &self.csvlks[i])
    }

    /// The ePID profile with this name, compared case-insensitively (`office2019` finds
    /// `Office2019`).
    pub fn epid_profile(&self, name: &str) -> Option<&EpidProfile> {
        self.index
            .epid_profiles
            .get(&fold(name))
            .map(|&i| &self.epid_profiles[i])
    }

    /// The ePID profile answering a request (PROTOCOL.md §6.1 step 6): the profile of the KMS
    /// item `kms_id` (aliases resolved); for an unknown KMS ID the `default_epid_profile` of the
    /// application `app_id`; for an unknown application the `Windows` profile.
    pub fn epid_profile_for(&self, kms_id: &Uuid, app_id: &Uuid) -> &EpidProfile {
        let name = match (self.kms_item_resolved(kms_id), self.application(app_id)) {
            (Some(item), _) => item.epid_profile.as_str(),
            (None, Some(app)) => app.default_epid_profile.as_str(),
            (None, None) => FALLBACK_EPID_PROFILE,
        };
        self.epid_profile(name)
            .expect("validated catalog: every referenced ePID profile and `Windows` exist")
    }

    /// The host build table entry for exactly this build number.
    pub fn host_build(&self, build: u32) -> Option<&HostBuild> {
        self.host_builds
            .binary_search_by_key(&build, |h| h.build)
            .ok()
            .map(|i| &self.host_builds[i])
    }

    /// The platform ID (ePID field 1) of a host running `build` (PROTOCOL.md §8.2): that of the
    /// highest table build not above `build`, or of the lowest table build if `build` is below
    /// all of them.
    pub fn platform_id(&self, build: u32) -> u32 {
        // Number of table builds <= build.
        let n = self.host_builds.partition_point(|h| h.build <= build);
        self.host_builds[n.saturating_sub(1)].platform_id
    }

    /// The release date of `build` (PROTOCOL.md §8.2), the lower bound for ePID activation
    /// dates: that of the lowest table build not below `build`, or of the highest table build if
    /// `build` is above all of them.
    pub fn release_date(&self, build: u32) -> Date {
        // Index of the first table build >= build.
        let n = self.host_builds.partition_point(|h| h.build < build);
        self.host_builds[n.min(self.host_builds.len() - 1)].release_date
    }

    /// The LCIDs used for random ePIDs (PROTOCOL.md Appendix C), in file order.
    pub fn lcids(&self) -> &[u32] {
        &self.lcids
    }

    /// All applications, in file order.
    pub fn applications(&self) -> std::slice::Iter<'_, Application> {
        self.applications.iter()
    }

    /// All KMS items, aliases included, in file order.
    pub fn kms_items(&self) -> std::slice::Iter<'_, KmsItem> {
        self.kms_items.iter()
    }

    /// All SKUs, in file order (entries added by an extension come last).
    pub fn skus(&self) -> std::slice::Iter<'_, Sku> {
        self.skus.iter()
    }

    /// All ePID profiles, in file order.
    pub fn epid_profiles(&self) -> std::slice::Iter<'_, EpidProfile> {
        self.epid_profiles.iter()
    }

    /// All CSVLKs, in file order.
    pub fn csvlks(&self) -> std::slice::Iter<'_, Csvlk> {
        self.csvlks.iter()
    }

    /// All host builds, in ascending build order.
    pub fn host_builds(&self) -> std::slice::Iter<'_, HostBuild> {
        self.host_builds.iter()
    }
}
