//! [`Chrome`]: what every page's frame (`base.html`) shows — title, current section, version.

/// The frame around every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page title (before "· rkms").
    pub title: String,
    /// The highlighted navigation entry: `overview`, `clients`, `products`, `settings` or "".
    pub nav: &'static str,
    /// rkms version (also busts the assets' cache).
    pub version: &'static str,
}

impl Chrome {
    /// The frame of a page titled `title` in section `nav`.
    pub fn new(title: impl Into<String>, nav: &'static str) -> Self {
        Chrome {
            title: title.into(),
            nav,
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}
