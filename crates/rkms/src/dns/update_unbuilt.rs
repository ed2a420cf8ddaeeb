//! DNS publishing in a build without the `dns` feature: nothing is ever published. A
//! [`Publisher`] cannot be made (the `--dns-publish` zones it would need are refused when
//! parsed), so the host's code stays the same in every build.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::DnsPublishArgs;

/// Never made without the `dns` feature.
#[derive(Debug, Clone)]
pub enum Publisher {}

/// Never made without the `dns` feature.
#[derive(Debug)]
pub enum PublishStatus {}

impl Publisher {
    /// No zones: nothing to publish (`Ok(None)`); zones cannot be given to this build, but are
    /// refused here too should they come some other way.
    pub fn new(args: &DnsPublishArgs, _port: u16) -> Result<Option<Publisher>, String> {
        if args.zones.is_empty() {
            Ok(None)
        } else {
            Err(crate::features::unbuilt(
                "dns",
                "publish this host in DNS (--dns-publish)",
            ))
        }
    }

    /// Never called.
    pub fn status(&self) -> Arc<PublishStatus> {
        match *self {}
    }

    /// Never called.
    pub async fn run(self) {
        match self {}
    }

    /// Never called.
    pub async fn unpublish_all(&self) {
        match *self {}
    }
}

impl PublishStatus {
    /// Never called.
    pub fn zones(&self) -> BTreeMap<String, String> {
        match *self {}
    }

    /// Never called.
    pub fn summary(&self) -> Vec<(String, String)> {
        match *self {}
    }

    /// Never called.
    pub fn metrics_text(&self) -> String {
        match *self {}
    }
}
