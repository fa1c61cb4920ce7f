//! Value types and checks shared by the flag groups: listen addresses, durations, DNS names,
//! the pod's own namespace, and the error every check returns.

use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

/// Where the in-cluster service account's namespace is mounted.
pub const SERVICE_ACCOUNT_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// A flag (or environment variable) whose value is unusable, or flags that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// One value is invalid.
    #[error("invalid {flag} value {value:?}: {reason}")]
    InvalidValue {
        /// The flag or environment variable that carried the value.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong and what is expected instead.
        reason: String,
    },
    /// Values are individually valid but inconsistent.
    #[error("{flags}: {reason}")]
    Inconsistent {
        /// The flags involved, e.g. `--lease-duration/--renew-deadline`.
        flags: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// A listen address: a socket address, or disabled (`0`, as in controller-runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindAddress {
    /// Do not serve this endpoint.
    Disabled,
    /// Listen here.
    Socket(SocketAddr),
}

impl BindAddress {
    /// The socket address, or `None` when disabled.
    pub fn socket_addr(self) -> Option<SocketAddr> {
        match self {
            Self::Disabled => None,
            Self::Socket(addr) => Some(addr),
        }
    }
}

impl FromStr for BindAddress {
    type Err = String;

    /// Accepts `0` or the empty string (disabled), `:PORT` (all IPv4 interfaces, Go's meaning),
    /// `IP:PORT`, `[IPv6]:PORT` and `localhost:PORT`. Host names other than `localhost` are
    /// rejected because binding must not depend on DNS.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s == "0" {
            return Ok(Self::Disabled);
        }
        let invalid =
            || format!("{s:?} is not HOST:PORT, :PORT or 0 (HOST must be an IP or localhost)");
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(invalid());
        };
        let port: u16 = port.parse().map_err(|_| invalid())?;
        let ip = match host {
            "" | "0.0.0.0" => [0, 0, 0, 0].into(),
            "localhost" => [127, 0, 0, 1].into(),
            _ => {
                let bare = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                bare.parse().map_err(|_| invalid())?
            }
        };
        Ok(Self::Socket(SocketAddr::new(ip, port)))
    }
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => f.write_str("0"),
            Self::Socket(addr) => addr.fmt(f),
        }
    }
}

/// Parses a Go/humantime-style duration (`15s`, `1m30s`, `500ms`); a unit is required.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let parsed: jiff::SignedDuration = s.parse().map_err(|_| {
        format!("{s:?} is not a duration; use a number with a unit, e.g. 15s, 1m30s or 500ms")
    })?;
    Duration::try_from(parsed).map_err(|_| format!("{s:?} is negative; durations must be positive"))
}

/// `explicit` if set, else the operator's own namespace: POD_NAMESPACE, MY_POD_NAMESPACE, the
/// service account's namespace, `default`.
pub fn pod_namespace(
    explicit: Option<String>,
    env: impl Fn(&str) -> Option<String>,
    service_account_namespace: impl FnOnce() -> Option<String>,
) -> String {
    let non_empty = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    non_empty(explicit)
        .or_else(|| non_empty(env("POD_NAMESPACE")))
        .or_else(|| non_empty(env("MY_POD_NAMESPACE")))
        .or_else(|| non_empty(service_account_namespace()))
        .unwrap_or_else(|| "default".to_string())
}

/// [`pod_namespace`] from the process environment and the mounted service account.
pub fn own_namespace(explicit: Option<String>) -> String {
    pod_namespace(
        explicit,
        |key| std::env::var(key).ok(),
        || std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE_FILE).ok(),
    )
}

/// A namespace name is a DNS-1123 label.
pub fn check_namespace(flag: &'static str, ns: &str) -> Result<(), ConfigError> {
    if is_dns_label(ns) {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            flag,
            value: ns.to_string(),
            reason: "a namespace is at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit".into(),
        })
    }
}

/// Lease and webhook configuration names are DNS-1123 subdomains.
pub fn check_subdomain(flag: &'static str, name: &str) -> Result<(), ConfigError> {
    if name.len() <= 253 && name.split('.').all(is_dns_label) {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            flag,
            value: name.to_string(),
            reason: "must be a DNS subdomain: dot-separated lowercase labels of letters, digits and '-', at most 253 characters".into(),
        })
    }
}

/// Service names are DNS-1123 labels.
pub fn check_dns_label(flag: &'static str, name: &str) -> Result<(), ConfigError> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            flag,
            value: name.to_string(),
            reason: "must be at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit".into(),
        })
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses_accept_go_forms() {
        let socket = |s: &str| s.parse::<BindAddress>().map(BindAddress::socket_addr);
        let cases = [
            (":8080", Some("0.0.0.0:8080")),
            ("127.0.0.1:0", Some("127.0.0.1:0")),
            ("localhost:9", Some("127.0.0.1:9")),
            ("[::]:80", Some("[::]:80")),
            ("0", None),
            ("", None),
        ];
        for (text, want) in cases {
            let want = want.map(|a| a.parse::<SocketAddr>().expect("addr"));
            assert_eq!(socket(text), Ok(want), "{text}");
        }
        for bad in ["8080", "example.com:80", ":http", ":70000", "1.2.3:80"] {
            assert!(socket(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn the_pods_namespace_fallback_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            }
        };
        let no_file = || None;
        type Vars = &'static [(&'static str, &'static str)];
        // explicit, environment, service account file → namespace
        let cases: [(Option<&str>, Vars, Option<&str>, &str); 5] = [
            (
                None,
                &[("POD_NAMESPACE", "a"), ("MY_POD_NAMESPACE", "b")],
                None,
                "a",
            ),
            (
                None,
                &[("POD_NAMESPACE", ""), ("MY_POD_NAMESPACE", "b")],
                None,
                "b",
            ),
            (None, &[], Some("from-sa\n"), "from-sa"),
            (None, &[], None, "default"),
            (
                Some("explicit"),
                &[("POD_NAMESPACE", "a")],
                None,
                "explicit",
            ),
        ];
        for (explicit, vars, file, want) in cases {
            let got = match file {
                Some(text) => pod_namespace(explicit.map(String::from), env(vars), || {
                    Some(text.to_string())
                }),
                None => pod_namespace(explicit.map(String::from), env(vars), no_file),
            };
            assert_eq!(got, want, "{explicit:?} {vars:?} {file:?}");
        }
    }

    #[test]
    fn dns_names() {
        assert!(check_namespace("--x", "kubeflow").is_ok());
        assert!(check_namespace("--x", "Kubeflow").is_err());
        assert!(check_namespace("--x", "-a").is_err());
        assert!(check_subdomain("--x", "a.b-c.d").is_ok());
        assert!(check_subdomain("--x", "a..b").is_err());
        assert!(check_dns_label("--x", "a.b").is_err());
        let err = check_dns_label("--webhook-service-name", "Hook").unwrap_err();
        assert!(err.to_string().contains("--webhook-service-name"), "{err}");
    }
}
