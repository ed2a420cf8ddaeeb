//! Errors raised while loading or extending a catalog.

use std::fmt;

/// A top-level array of `products.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// `applications`
    Applications,
    /// `epid_profiles`
    EpidProfiles,
    /// `csvlks`
    Csvlks,
    /// `kms_items`
    KmsItems,
    /// `sku_items`
    SkuItems,
    /// `host_builds`
    HostBuilds,
    /// `lcids`
    Lcids,
}

impl Section {
    /// Every section, in the order they appear in `products.json`.
    pub const ALL: [Section; 7] = [
        Section::Applications,
        Section::EpidProfiles,
        Section::Csvlks,
        Section::KmsItems,
        Section::SkuItems,
        Section::HostBuilds,
        Section::Lcids,
    ];

    /// The section's key in the JSON file, e.g. `sku_items`.
    pub fn key(self) -> &'static str {
        match self {
            Section::Applications => "applications",
            Section::EpidProfiles => "epid_profiles",
            Section::Csvlks => "csvlks",
            Section::KmsItems => "kms_items",
            Section::SkuItems => "sku_items",
            Section::HostBuilds => "host_builds",
            Section::Lcids => "lcids",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Why a catalog file was refused.
///
/// Messages name the place of the problem, e.g.
/// `sku_items[12] (id 7b51a46c-…): kms_id 1234… is not a known KMS item`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The text is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What serde_json reported.
        message: String,
    },
    /// The document as a whole is unusable (not an object, wrong `format`, nothing to merge).
    #[error("{reason}")]
    Document {
        /// What is wrong.
        reason: String,
    },
    /// A top-level array required in a full catalog is absent.
    #[error("section `{section}` is missing")]
    MissingSection {
        /// The absent section.
        section: Section,
    },
    /// A section as a whole breaks a rule (wrong JSON type, empty, lacks a required entry).
    #[error("section `{section}`: {reason}")]
    Section {
        /// The offending section.
        section: Section,
        /// What is wrong.
        reason: String,
    },
    /// One entry of a section is malformed or refers to something unknown.
    ///
    /// `index` is the entry's position in the file that supplied it (for
    /// [`Catalog::extended_with`](crate::Catalog::extended_with), the extension file, unless the
    /// reason says the entry belongs to the base catalog).
    #[error("{section}[{index}]{}: {reason}", fmt_id(.id))]
    Entry {
        /// The section the entry is in.
        section: Section,
        /// 0-based position of the entry in its section.
        index: usize,
        /// The entry's identifier as written (GUID, profile name or build number), if readable.
        id: Option<String>,
        /// What is wrong.
        reason: String,
    },
}

fn fmt_id(id: &Option<String>) -> String {
    match id {
        Some(id) => format!(" (id {id})"),
        None => String::new(),
    }
}

impl CatalogError {
    /// The section the error is about, if it is about one.
    pub fn section(&self) -> Option<Section> {
        match self {
            CatalogError::MissingSection { section }
            | CatalogError::Section { section, .. }
            | CatalogError::Entry { section, .. } => Some(*section),
            CatalogError::Syntax { .. } | CatalogError::Document { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_message_names_section_index_and_id() {
        let e = CatalogError::Entry {
            section: Section::SkuItems,
            index: 12,
            id: Some("7b51a46c-0c04-4e8f-9af4-8496cca90d5e".into()),
            reason: "kms_id 1234 is not a known KMS item".into(),
        };
        assert_eq!(
            e.to_string(),
            "sku_items[12] (id 7b51a46c-0c04-4e8f-9af4-8496cca90d5e): kms_id 1234 is not a known KMS item"
        );
        assert_eq!(e.section(), Some(Section::SkuItems));
    }

    #[test]
    fn entry_message_without_id() {
        let e = CatalogError::Entry {
            section: Section::Lcids,
            index: 3,
            id: None,
            reason: "bad".into(),
        };
        assert_eq!(e.to_string(), "lcids[3]: bad");
    }

    #[test]
    fn section_keys_match_display() {
        for s in Section::ALL {
            assert_eq!(s.to_string(), s.key());
        }
        assert_eq!(Section::EpidProfiles.key(), "epid_profiles");
    }
}
