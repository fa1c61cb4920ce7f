//! A Kubernetes object UID as the caches keep it.
//!
//! The apiserver issues UIDs as canonical UUIDs: 36 characters, which as a `String` take 48
//! bytes of heap besides the 24 of the string itself, for every pod and Service the operator
//! caches. A canonical UUID is kept as its 16 bytes instead; anything else (a UID the
//! apiserver would not issue, but which a fixture or another API server might) is kept as
//! text. Either way it reads back exactly as it was given.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Uid {
    /// A lowercase hyphenated UUID, as its 16 bytes.
    Uuid([u8; 16]),
    /// Any other UID, as given.
    Other(Box<str>),
}

/// Where the hyphens of a canonical UUID are.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

impl Uid {
    pub fn new(text: &str) -> Uid {
        parse_uuid(text).map_or_else(|| Uid::Other(text.into()), Uid::Uuid)
    }

    /// Whether this is the UID `text`.
    pub fn is(&self, text: &str) -> bool {
        match self {
            Uid::Uuid(bytes) => parse_uuid(text).is_some_and(|other| other == *bytes),
            Uid::Other(own) => **own == *text,
        }
    }
}

/// The 16 bytes of a lowercase hyphenated UUID; `None` for any other text, so that the
/// bytes always print back as the same text.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let text = text.as_bytes();
    if text.len() != 36 || HYPHENS.iter().any(|&at| text[at] != b'-') {
        return None;
    }
    let mut digits = text
        .iter()
        .enumerate()
        .filter(|(at, _)| !HYPHENS.contains(at))
        .map(|(_, digit)| match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            _ => None,
        });
    let mut bytes = [0u8; 16];
    for byte in &mut bytes {
        let (high, low) = (digits.next()??, digits.next()??);
        *byte = high << 4 | low;
    }
    Some(bytes)
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uid::Uuid(bytes) => {
                for (at, byte) in bytes.iter().enumerate() {
                    if matches!(at, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Uid::Other(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl From<&str> for Uid {
    fn from(text: &str) -> Uid {
        Uid::new(text)
    }
}

impl From<String> for Uid {
    fn from(text: String) -> Uid {
        Uid::new(&text)
    }
}

impl PartialEq<str> for Uid {
    fn eq(&self, other: &str) -> bool {
        self.is(other)
    }
}

impl PartialEq<String> for Uid {
    fn eq(&self, other: &String) -> bool {
        self.is(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_reads_back_as_it_was_given() {
        let cases = [
            // (text, kept as 16 bytes)
            ("7f0c2a4e-1b2c-4d5e-8f90-000000000001", true),
            ("00000000-0000-0000-0000-000000000000", true),
            ("ffffffff-ffff-ffff-ffff-ffffffffffff", true),
            // Upper case would print back in lower case: kept as text.
            ("7F0C2A4E-1B2C-4D5E-8F90-000000000001", false),
            ("7f0c2a4e1b2c4d5e8f90000000000001", false),
            ("7f0c2a4e-1b2c-4d5e-8f90-00000000000g", false),
            ("7f0c2a4e-1b2c-4d5e-8f90-0000000000001", false),
            ("7f0c2a4e-1b2c-4d5e-8f9-0000000000001", false),
            ("a-uid", false),
            ("", false),
            ("ü-uid-with-unicode-€€€€€€€€€€€€€€€€", false),
        ];
        for (text, compact) in cases {
            let uid = Uid::new(text);
            assert_eq!(uid.to_string(), text);
            assert_eq!(matches!(uid, Uid::Uuid(_)), compact, "{text}");
            assert!(uid.is(text) && uid == *text, "{text}");
            assert!(!uid.is("7f0c2a4e-1b2c-4d5e-8f90-000000000002"), "{text}");
        }
    }

    #[test]
    fn it_is_as_small_as_the_string_it_replaces() {
        assert_eq!(std::mem::size_of::<Option<Uid>>(), 24);
    }
}
