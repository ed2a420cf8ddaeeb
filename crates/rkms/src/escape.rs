//! Output of text a client controls (workstation names, ePIDs of a foreign host, addresses…):
//! one place decides what is escaped, for text logs, terminal tables and CSV files.
//!
//! - [`terminal`]: control characters (C0, DEL, C1), line and paragraph separators, bidi
//!   overrides and invisible format characters are written as `\n`, `\r`, `\t` or `\u{…}`;
//!   everything else is kept.
//! - [`log_value`]: a value of a text log line (`key=value`): kept as is when it is a non-empty
//!   run of safe characters without white space, `=` or `"`; otherwise in double quotes, with
//!   `\` and `"` escaped as well. A value never spans lines and never looks like a second field.
//! - [`csv_cell`]: a CSV cell (RFC 4180): quoted when it holds `,`, `"`, CR or LF (quotes
//!   doubled); a cell starting with `=`, `+`, `-`, `@`, tab or CR (or their full-width forms)
//!   gets a leading `'` so that spreadsheets take it as text, not a formula (OWASP CSV
//!   injection). Other unsafe characters are escaped as for [`terminal`].

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Whether `c` must not reach a terminal or a log line as it is: C0 controls, DEL, C1
/// controls, line/paragraph separators, bidirectional embeddings, overrides and isolates,
/// zero-width and invisible format characters, the byte-order mark and tag characters.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{e0000}'..='\u{e007f}')
}

/// Appends the escape of an unsafe character: `\n`, `\r`, `\t`, else `\u{hex}`.
fn push_escape(out: &mut String, c: char) {
    let _ = write_escape(out, c);
}

/// Writes the escape of an unsafe character to `w` (see [`push_escape`]).
fn write_escape(w: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => w.write_str("\\n"),
        '\r' => w.write_str("\\r"),
        '\t' => w.write_str("\\t"),
        c => write!(w, "\\u{{{:x}}}", c as u32),
    }
}

/// Whether `text` is all printable ASCII, and whether it holds none of space, `=` and `"`:
/// eight bytes at a time (a log line is a few hundred bytes of such text).
pub(crate) fn classify(text: &str) -> (bool, bool) {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of a byte of the result is set for the first byte of `v` that is zero
    // (later bytes may be marked too; any mark means there is a zero byte).
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let every = |b: u8| u64::from_ne_bytes([b; 8]);
    let (mut outside, mut special) = (0u64, 0u64);
    let mut chunks = text.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_ne_bytes(word);
        // A byte below 0x20 (its value minus 0x20 borrows, and its high bit was clear), with
        // the high bit set (0x80 and above), or DEL.
        outside |=
            (v.wrapping_sub(every(0x20)) & !v & HIGH) | (v & HIGH) | zero_byte(v ^ every(0x7f));
        special |=
            zero_byte(v ^ every(b' ')) | zero_byte(v ^ every(b'=')) | zero_byte(v ^ every(b'"'));
    }
    let (mut outside, mut special) = (outside != 0, special != 0);
    for &b in chunks.remainder() {
        outside |= !(b' '..=b'~').contains(&b);
        special |= matches!(b, b' ' | b'=' | b'"');
    }
    (!outside, !special)
}

/// `text` safe for a terminal: unsafe characters ([`is_unsafe`]) escaped, the rest kept.
pub fn terminal(text: &str) -> Cow<'_, str> {
    // Printable ASCII (the usual case) is safe: a word test instead of decoding characters.
    if classify(text).0 || !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether a log value must go in quotes.
fn needs_quotes(text: &str) -> bool {
    // Printable ASCII (the usual case) needs them when empty or holding a space, `=` or `"`:
    // a word test instead of decoding characters.
    let (printable, plain) = classify(text);
    if printable {
        return text.is_empty() || !plain;
    }
    text.is_empty()
        || text
            .chars()
            .any(|c| is_unsafe(c) || c.is_whitespace() || c == '=' || c == '"')
}

/// A value for a text log line: as is, or quoted with `\`, `"` and unsafe characters escaped
/// (see the module documentation).
pub fn log_value(text: &str) -> Cow<'_, str> {
    if !needs_quotes(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let _ = write_quoted(&mut out, text);
    Cow::Owned(out)
}

/// Writes [`log_value`] of `text` to `w` without a string of its own (a log line's fields).
pub fn write_log_value(w: &mut impl fmt::Write, text: &str) -> fmt::Result {
    if needs_quotes(text) {
        write_quoted(w, text)
    } else {
        w.write_str(text)
    }
}

/// `text` in double quotes, `\`, `"` and unsafe characters escaped; the runs between them
/// written whole.
fn write_quoted(w: &mut impl fmt::Write, text: &str) -> fmt::Result {
    w.write_char('"')?;
    let mut run = 0;
    for (i, c) in text.char_indices() {
        if c == '"' || c == '\\' || is_unsafe(c) {
            w.write_str(&text[run..i])?;
            match c {
                '"' => w.write_str("\\\"")?,
                '\\' => w.write_str("\\\\")?,
                c => write_escape(w, c)?,
            }
            run = i + c.len_utf8();
        }
    }
    w.write_str(&text[run..])?;
    w.write_char('"')
}

/// Whether a spreadsheet would read a cell starting with `c` as a formula.
fn formula_lead(c: char) -> bool {
    matches!(
        c,
        '=' | '+' | '-' | '@' | '\t' | '\r' | '\u{ff1d}' | '\u{ff0b}' | '\u{ff0d}' | '\u{ff20}'
    )
}

/// A CSV cell (see the module documentation).
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    let formula = text.chars().next().is_some_and(formula_lead);
    let unsafe_chars = text
        .chars()
        .any(|c| is_unsafe(c) && !matches!(c, '\t' | '\r' | '\n'));
    let quote = formula || text.contains([',', '"', '\r', '\n']);
    if !formula && !unsafe_chars && !quote {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in text.chars() {
        match c {
            '"' => out.push_str("\"\""),
            '\t' | '\r' | '\n' => out.push(c),
            c if is_unsafe(c) => push_escape(&mut out, c),
            c => out.push(c),
        }
    }
    if quote {
        out.push('"');
    }
    Cow::Owned(out)
}

/// An address as people read it: an IPv4 address mapped into IPv6 (`::ffff:127.0.0.1`, as a
/// dual-stack `[::]` listener reports IPv4 clients) is shown as the IPv4 address
/// ([`IpAddr::to_canonical`]); the port is kept.
pub fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// A stored address text with a mapped IPv4 address (`::ffff:10.0.0.1`) shown as IPv4; any
/// other text is returned as it is.
pub fn canonical_address_text(text: &str) -> Cow<'_, str> {
    match text.parse::<IpAddr>() {
        Ok(ip @ IpAddr::V6(_)) if ip.to_canonical() != ip => {
            Cow::Owned(ip.to_canonical().to_string())
        }
        _ => match text.parse::<SocketAddr>() {
            Ok(a @ SocketAddr::V6(_)) if canonical_addr(a) != a => {
                Cow::Owned(canonical_addr(a).to_string())
            }
            _ => Cow::Borrowed(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character a hostile client could use to break a line, move the cursor, set the
    /// window title, reverse text or hide text.
    fn hostile() -> Vec<char> {
        let mut v: Vec<char> = (0u32..0x20)
            .chain(0x7f..0xa0)
            .filter_map(char::from_u32)
            .collect();
        v.extend([
            '\u{61c}',
            '\u{180e}',
            '\u{200b}',
            '\u{200e}',
            '\u{200f}',
            '\u{2028}',
            '\u{2029}',
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2060}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{feff}',
            '\u{fff9}',
            '\u{e0001}',
            '\u{e0041}',
        ]);
        v
    }

    #[test]
    fn every_hostile_character_is_escaped_everywhere() {
        for c in hostile() {
            let text = format!("a{c}b");
            for out in [
                terminal(&text).into_owned(),
                log_value(&text).into_owned(),
                csv_cell(&text).into_owned(),
            ] {
                let kept_raw = out.contains(c) && !(matches!(c, '\t' | '\r' | '\n'));
                assert!(!kept_raw, "{:?} kept raw in {out:?}", c);
            }
            assert!(!terminal(&text).contains(c), "{c:?}");
            assert!(!log_value(&text).contains(c), "{c:?}");
            assert!(is_unsafe(c), "{c:?}");
        }
    }

    #[test]
    fn ordinary_text_is_kept() {
        for text in [
            "PC01",
            "DESKTOP-ÄÖÜ-日本",
            "03612-00206-471-452343-03-1033-17763.0000-2692019",
            "DOMAIN\\PC",
            "ws-😀",
            "",
        ] {
            assert_eq!(terminal(text), text);
            assert!(matches!(terminal(text), Cow::Borrowed(_)));
        }
        for c in [
            'a',
            'é',
            ' ',
            '\u{a0}',
            '\u{3000}',
            '\u{202f}',
            '\u{1f600}',
            '\\',
        ] {
            assert!(!is_unsafe(c), "{c:?}");
        }
    }

    #[test]
    fn terminal_escapes() {
        assert_eq!(terminal("a\nb"), "a\\nb");
        assert_eq!(terminal("a\r\tb"), "a\\r\\tb");
        assert_eq!(terminal("\u{1b}]0;pwned\u{7}"), "\\u{1b}]0;pwned\\u{7}");
        assert_eq!(terminal("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(terminal("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(terminal("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(terminal("\u{0}"), "\\u{0}");
        assert_eq!(terminal("\u{7f}"), "\\u{7f}");
    }

    /// The byte tests that skip decoding for printable ASCII decide as the character rules
    /// do, for every ASCII character alone, beside a letter and beside a non-ASCII one.
    #[test]
    fn ascii_fast_paths_decide_as_the_character_rules() {
        let slow_quotes = |t: &str| {
            t.is_empty()
                || t.chars()
                    .any(|c| is_unsafe(c) || c.is_whitespace() || c == '=' || c == '"')
        };
        for b in 0u8..=0x7f {
            let c = char::from(b);
            for text in [
                c.to_string(),
                format!("a{c}b"),
                format!("{c}\u{e9}"),
                format!("\u{202e}{c}"),
            ] {
                assert_eq!(needs_quotes(&text), slow_quotes(&text), "{text:?}");
                let unsafe_chars = text.chars().any(is_unsafe);
                assert_eq!(
                    matches!(terminal(&text), Cow::Owned(_)),
                    unsafe_chars,
                    "{text:?}"
                );
            }
        }
        assert!(needs_quotes(""));
        assert_eq!(terminal(""), "");
    }

    #[test]
    fn log_values() {
        assert_eq!(log_value("PC01"), "PC01");
        assert_eq!(log_value("127.0.0.1:1688"), "127.0.0.1:1688");
        assert_eq!(log_value("C:\\x"), "C:\\x");
        assert_eq!(log_value(""), "\"\"");
        assert_eq!(
            log_value("PC01 cmid=x product=y"),
            "\"PC01 cmid=x product=y\""
        );
        assert_eq!(log_value("a=b"), "\"a=b\"");
        assert_eq!(log_value("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(log_value("a\\b c"), "\"a\\\\b c\"");
        assert_eq!(log_value("a\nINFO forged"), "\"a\\nINFO forged\"");
        assert_eq!(log_value("\u{1b}[2J"), "\"\\u{1b}[2J\"");
        assert_eq!(log_value("non\u{a0}breaking"), "\"non\u{a0}breaking\"");
        // Whatever the input, the value is one token: no raw line break, no unquoted space
        // or `=`, and a quoted value ends at its closing quote.
        let nasty = "x\" y=\\\" z\n\r\u{2028}";
        let v = log_value(nasty);
        assert!(v.starts_with('"') && v.ends_with('"'));
        let inner = &v[1..v.len() - 1];
        let mut escaped = false;
        for c in inner.chars() {
            assert!(!is_unsafe(c));
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else {
                assert_ne!(c, '"', "unescaped quote inside {v}");
            }
        }
    }

    #[test]
    fn csv_quoting_follows_rfc_4180() {
        assert_eq!(csv_cell("PC01"), "PC01");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("a\nb"), "\"a\nb\"");
        assert_eq!(csv_cell("a\rb"), "\"a\rb\"");
        assert_eq!(csv_cell("a\r\nb"), "\"a\r\nb\"");
        assert_eq!(csv_cell("a\tb"), "a\tb");
        assert_eq!(csv_cell("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
    }

    #[test]
    fn csv_formulas_are_neutralised() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_cell("+1"), "\"'+1\"");
        assert_eq!(csv_cell("-1+2"), "\"'-1+2\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_cell("\t=1"), "\"'\t=1\"");
        assert_eq!(csv_cell("\r=1"), "\"'\r=1\"");
        assert_eq!(csv_cell("\u{ff1d}1+1"), "\"'\u{ff1d}1+1\"");
        // Not at the start: data, kept.
        assert_eq!(csv_cell("PC-01"), "PC-01");
        assert_eq!(csv_cell("a=b"), "a=b");
    }

    #[test]
    fn mapped_addresses_are_shown_as_ipv4() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            canonical_addr(SocketAddr::new(mapped, 1)).ip().to_string(),
            "127.0.0.1"
        );
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(canonical_addr(SocketAddr::new(v6, 1)).ip(), v6);
        let a: SocketAddr = "[::ffff:10.1.2.3]:50000".parse().unwrap();
        assert_eq!(canonical_addr(a).to_string(), "10.1.2.3:50000");
        assert_eq!(canonical_address_text("::ffff:10.1.2.3"), "10.1.2.3");
        assert_eq!(
            canonical_address_text("[::ffff:10.1.2.3]:1688"),
            "10.1.2.3:1688"
        );
        assert_eq!(canonical_address_text("2001:db8::1"), "2001:db8::1");
        assert_eq!(canonical_address_text("not an address"), "not an address");
        assert_eq!(canonical_address_text(""), "");
    }

    /// The word-at-a-time check agrees with a byte-at-a-time one, for every byte at every
    /// place of a word and around it.
    #[test]
    fn classify_agrees_with_each_byte() {
        let slow = |t: &[u8]| {
            (
                t.iter().all(|b| (b' '..=b'~').contains(b)),
                !t.iter().any(|b| matches!(b, b' ' | b'=' | b'"')),
            )
        };
        for len in 0..20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    for fill in [b'a', b'~', b'!', b' '] {
                        let mut t = vec![fill; len];
                        t[at] = byte;
                        // Only valid text is classified: bytes from 0x80 as a two-byte char.
                        let text = String::from_utf8_lossy(&t).into_owned();
                        assert_eq!(classify(&text), slow(text.as_bytes()), "{t:?}");
                    }
                }
            }
        }
        let long = "activated (count 50 for required 25) é".repeat(3);
        assert_eq!(classify(&long), (false, false));
        assert_eq!(
            classify("2de67392-b7a7-462a-b1ca-108dd189f588"),
            (true, true)
        );
    }

    /// Values written in place (and through `log_value`) are what the rule of the module
    /// documentation gives, applied a character at a time.
    #[test]
    fn log_values_written_in_place_follow_the_rule() {
        let by_rule = |t: &str| -> String {
            if !t.is_empty()
                && !t
                    .chars()
                    .any(|c| is_unsafe(c) || c.is_whitespace() || c == '=' || c == '"')
            {
                return t.to_owned();
            }
            let mut out = String::from("\"");
            for c in t.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if is_unsafe(c) => push_escape(&mut out, c),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        };
        let values = [
            "",
            " ",
            "plain",
            "Windows 10 Enterprise",
            "a=b",
            "say \"hi\"",
            "back\\slash",
            "back\\slash and space",
            "\"",
            "\\",
            "=",
            "end\\",
            "tab\there",
            "new\nline",
            "caf\u{e9} au lait",
            "caf\u{e9}",
            "\u{202e}rtl",
            "\u{7f}",
            "~!@#$%^&*()_+",
        ];
        for value in values {
            let mut written = String::new();
            write_log_value(&mut written, value).unwrap();
            assert_eq!(written, by_rule(value), "{value:?}");
            assert_eq!(log_value(value), by_rule(value), "{value:?}");
        }
    }
}
