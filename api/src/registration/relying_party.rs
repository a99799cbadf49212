//! The relying party: who the passkeys are for and which pages may register
//! them, from configuration only (never from a request's headers).

use std::time::Duration;

use passlink_shared::config::Reader;
use url::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// The relying party's settings and the WebAuthn library configured with
/// them.
#[derive(Clone, Debug)]
pub struct RelyingParty {
    /// The RP id passkeys are bound to: a domain, such as `example.com`.
    pub id: String,
    /// Origins (`scheme://host[:port]`) whose pages may run the ceremony.
    pub origins: Vec<Url>,
    /// How long a started ceremony waits for its verification; also the
    /// timeout the browser is given.
    pub ceremony_ttl: Duration,
    webauthn: Webauthn,
}

impl RelyingParty {
    /// Reads the `PASSLINK_WEBAUTHN_*` settings. The defaults follow the
    /// public base URL, so that the default link's page can register out of
    /// the box.
    pub fn read(reader: &mut Reader<'_>, public_base_url: &str) -> Option<Self> {
        let public = Url::parse(public_base_url).ok();
        let default_id = public
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or_default()
            .to_owned();
        let default_origin = public
            .as_ref()
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();

        let id = reader
            .string("PASSLINK_WEBAUTHN_RP_ID", &default_id)
            .to_ascii_lowercase();
        // Shown by some authenticators next to the passkey.
        let name = reader.string("PASSLINK_WEBAUTHN_RP_NAME", "Passlink");
        let ceremony_ttl = reader.duration_in(
            "PASSLINK_WEBAUTHN_CEREMONY_TTL",
            Duration::from_secs(300),
            Duration::from_secs(10)..=Duration::from_secs(3600),
        );

        let mut origins = Vec::new();
        for raw in reader.list("PASSLINK_WEBAUTHN_ORIGINS", &[default_origin.as_str()]) {
            match parse_origin(&raw, &id) {
                Ok(origin) => origins.push(origin),
                Err(err) => reader.fail("PASSLINK_WEBAUTHN_ORIGINS", format!("{raw:?} {err}")),
            }
        }
        let Some(first) = origins.first() else {
            reader.fail("PASSLINK_WEBAUTHN_ORIGINS", "needs at least one origin");
            return None;
        };

        let mut builder = match WebauthnBuilder::new(&id, first) {
            Ok(builder) => builder,
            Err(err) => {
                reader.fail(
                    "PASSLINK_WEBAUTHN_RP_ID",
                    format!("{id:?} is not usable: {err}"),
                );
                return None;
            }
        };
        for origin in &origins[1..] {
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder
            .rp_name(&name)
            .timeout(ceremony_ttl)
            .build()
            .inspect_err(|err| reader.fail("PASSLINK_WEBAUTHN_RP_ID", err))
            .ok()?;

        Some(Self {
            id,
            origins,
            ceremony_ttl,
            webauthn,
        })
    }

    pub fn webauthn(&self) -> &Webauthn {
        &self.webauthn
    }

    /// Whether a request's `domain` names this relying party: the RP id
    /// itself, or the host of one of its origins. The registration page sends
    /// the host it is served from, which for an origin below the RP id
    /// (`login.example.com` for `example.com`) is not the RP id; the passkey
    /// is bound to the RP id either way, and Passlink serves one.
    pub fn accepts_domain(&self, domain: &str) -> bool {
        domain.eq_ignore_ascii_case(&self.id)
            || self
                .origins
                .iter()
                .filter_map(Url::host_str)
                .any(|host| host.eq_ignore_ascii_case(domain))
    }
}

/// An allowed origin: http(s), a domain that is the RP id or below it, no
/// path. Plain http only for `localhost`, as browsers allow WebAuthn
/// nowhere else without TLS.
fn parse_origin(raw: &str, rp_id: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|err| format!("is not a URL: {err}"))?;
    let host = url
        .domain()
        .ok_or("has no domain name (WebAuthn does not work on IP addresses)")?
        .to_ascii_lowercase();
    match url.scheme() {
        "https" => {}
        "http" if host == "localhost" || host.ends_with(".localhost") => {}
        _ => return Err("must be https (or http on localhost)".into()),
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("must be an origin, without path, query or fragment".into());
    }
    if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
        return Err(format!("is not on the RP id {rp_id:?} or below it"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<RelyingParty, Vec<String>> {
        let source: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut reader = Reader::new(&source);
        let rp = RelyingParty::read(&mut reader, "https://login.example.com");
        reader.finish().map_err(|e| e.lines)?;
        Ok(rp.expect("no errors means a relying party"))
    }

    #[test]
    fn defaults_follow_the_public_address() {
        let rp = read(&[]).unwrap();
        assert_eq!(rp.id, "login.example.com");
        assert_eq!(rp.origins.len(), 1);
        assert_eq!(rp.origins[0].as_str(), "https://login.example.com/");
        assert_eq!(rp.ceremony_ttl, Duration::from_secs(300));
        assert!(rp.accepts_domain("LOGIN.example.com"));
        assert!(!rp.accepts_domain("example.com"));
        assert!(!rp.accepts_domain("evil.login.example.com"));
    }

    #[test]
    fn a_parent_domain_with_several_origins() {
        let rp = read(&[
            ("PASSLINK_WEBAUTHN_RP_ID", "example.com"),
            (
                "PASSLINK_WEBAUTHN_ORIGINS",
                "https://login.example.com, https://example.com:8443",
            ),
        ])
        .unwrap();
        assert_eq!(rp.id, "example.com");
        assert_eq!(rp.webauthn().get_allowed_origins().len(), 2);
        // The page on login.example.com sends its own host.
        assert!(rp.accepts_domain("example.com"));
        assert!(rp.accepts_domain("Login.Example.com"));
        assert!(!rp.accepts_domain("other.example.com"));
        assert!(!rp.accepts_domain("example.com:8443"));
    }

    #[test]
    fn refuses_origins_that_cannot_work() {
        for origins in [
            "https://other.test",
            "http://login.example.com",
            "https://127.0.0.1",
            "https://login.example.com/path",
            "not a url",
        ] {
            let lines = read(&[("PASSLINK_WEBAUTHN_ORIGINS", origins)]).unwrap_err();
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("PASSLINK_WEBAUTHN_ORIGINS")),
                "{origins}: {lines:?}"
            );
        }
        let lines = read(&[("PASSLINK_WEBAUTHN_CEREMONY_TTL", "1s")]).unwrap_err();
        assert!(lines[0].starts_with("PASSLINK_WEBAUTHN_CEREMONY_TTL"));
    }

    #[test]
    fn localhost_may_use_http() {
        let source: HashMap<String, String> = HashMap::new();
        let mut reader = Reader::new(&source);
        let rp = RelyingParty::read(&mut reader, "http://localhost:8080").unwrap();
        reader.finish().unwrap();
        assert_eq!(rp.id, "localhost");
        assert_eq!(rp.origins[0].as_str(), "http://localhost:8080/");
    }
}
