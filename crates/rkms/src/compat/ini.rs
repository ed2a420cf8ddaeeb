//! vlmcsd's configuration file (vlmcsd.ini): `Keyword = argument` lines, `#` and `;`
//! comments, keywords case-insensitive, the last occurrence winning (except `Listen`). Each
//! keyword is turned into the vlmcsd command-line option it stands for, so that both go
//! through one translation ([`super::vlmcsd`]).

use std::path::Path;

/// One setting of the file: the vlmcsd option letter, its argument, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniOption {
    /// The command-line option (`L`, `N`, `a`, …).
    pub letter: char,
    /// Its argument in command-line form (`N` takes `0`/`1`, `a` takes `NAME=EPID[/HWID]`).
    pub value: String,
    /// `FILE:LINE: Keyword`, for messages.
    pub origin: String,
}

/// Keywords with the option letter they stand for and whether the argument is TRUE/FALSE.
const KEYWORDS: &[(&str, char, bool)] = &[
    ("Listen", 'L', false),
    ("Port", 'P', false),
    ("FreeBind", 'F', true),
    ("PublicIPProtectionLevel", 'o', false),
    ("VPN", 'O', false),
    ("ExitLevel", 'x', false),
    ("UseNDR64", 'N', true),
    ("UseBTFN", 'B', true),
    ("RandomizationLevel", 'r', false),
    ("LCID", 'C', false),
    ("HostBuild", 'H', false),
    ("MaxWorkers", 'm', false),
    ("ConnectionTimeout", 't', false),
    ("DisconnectClientsImmediately", 'd', true),
    ("PidFile", 'p', false),
    ("LogFile", 'l', false),
    ("KmsData", 'j', false),
    ("LogDateAndTime", 'T', true),
    ("LogVerbose", 'v', true),
    ("WhitelistingLevel", 'K', false),
    ("CheckClientTime", 'c', true),
    ("MaintainClients", 'M', true),
    ("StartEmpty", 'E', true),
    ("ActivationInterval", 'A', false),
    ("RenewalInterval", 'R', false),
    ("User", 'u', false),
    ("Group", 'g', false),
];

/// The ePID profiles (vlmcsd's CSVLK names) a `<csvlk-name> = ePID [/ HwId]` line may name.
pub const CSVLK_NAMES: &[&str] = &[
    "Windows",
    "WinChinaGov",
    "Office2010",
    "Office2013",
    "Office2016",
    "Office2019",
    "Office2021",
    "Office2024",
];

fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Reads a vlmcsd.ini file.
pub fn load(path: &Path) -> Result<Vec<IniOption>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("-i {}: cannot read it: {e}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("-i {}: not a UTF-8 text file", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// Parses vlmcsd.ini text; `name` is used in messages.
pub fn parse(text: &str, name: &str) -> Result<Vec<IniOption>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start().trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let at = format!("{name}:{}", n + 1);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("{at}: expected 'Keyword = argument', found '{line}'"))?;
        let key = key.trim();
        let value = value.trim_start().trim_end();
        if let Some((kw, letter, is_bool)) = KEYWORDS
            .iter()
            .find(|(k, _, _)| k.eq_ignore_ascii_case(key))
        {
            let origin = format!("{at}: {kw}");
            let value = if *is_bool {
                let b = boolean(value).ok_or_else(|| {
                    format!("{origin}: '{value}' is not TRUE or FALSE (Yes/No, On/Off, 1/0)")
                })?;
                match (letter, b) {
                    ('d', false) => {
                        out.push(IniOption {
                            letter: 'k',
                            value: String::new(),
                            origin,
                        });
                        continue;
                    }
                    ('v', false) => {
                        out.push(IniOption {
                            letter: 'q',
                            value: String::new(),
                            origin,
                        });
                        continue;
                    }
                    ('d' | 'v', true) => String::new(),
                    (_, b) => u8::from(b).to_string(),
                }
            } else {
                value.to_string()
            };
            out.push(IniOption {
                letter: *letter,
                value,
                origin,
            });
        } else if let Some(csvlk) = CSVLK_NAMES.iter().find(|c| c.eq_ignore_ascii_case(key)) {
            out.push(IniOption {
                letter: 'a',
                value: format!("{csvlk}={value}"),
                origin: format!("{at}: {csvlk}"),
            });
        } else {
            return Err(format!(
                "{at}: unknown keyword '{key}' (vlmcsd.ini keywords: {}, or an ePID profile: {})",
                KEYWORDS.iter().map(|k| k.0).collect::<Vec<_>>().join(", "),
                CSVLK_NAMES.join(", ")
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_booleans_and_profiles() {
        let text = "# c\n; c\nlisten = 0.0.0.0:1688\nLISTEN=[::]:1688\nUseNDR64 = No\nDisconnectClientsImmediately = yes\nLogVerbose = off\nOffice2019 = 06401-00206-666-666666-03-1033-17763.0000-2822018 / 01 02 03 04 05 06 07 08\r\n";
        let o = parse(text, "v.ini").unwrap();
        let pairs: Vec<(char, &str)> = o.iter().map(|o| (o.letter, o.value.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ('L', "0.0.0.0:1688"),
                ('L', "[::]:1688"),
                ('N', "0"),
                ('d', ""),
                ('q', ""),
                (
                    'a',
                    "Office2019=06401-00206-666-666666-03-1033-17763.0000-2822018 / 01 02 03 04 05 06 07 08"
                ),
            ]
        );
        assert_eq!(o[2].origin, "v.ini:5: UseNDR64");
        assert!(parse("Foo = 1", "v.ini")
            .unwrap_err()
            .starts_with("v.ini:1: unknown keyword 'Foo'"));
        assert!(parse("UseBTFN = maybe", "v.ini")
            .unwrap_err()
            .contains("v.ini:1: UseBTFN: 'maybe' is not TRUE or FALSE"));
        assert!(parse("Listen 1.2.3.4", "v.ini").is_err());
    }
}
