//! The registration email: templates parsed once at start-up, rendered per
//! job in the recipient's language (falling back to English), and built
//! into a well-formed MIME message.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use serde::Serialize;
use tera::{Context, Tera};

/// The language every deployment has; others fall back to it.
pub const DEFAULT_LANGUAGE: &str = "en";

/// The three files each language provides.
const PARTS: [&str; 3] = ["subject.txt", "body.txt", "body.html"];

/// The HTML frame each language's `body.html` extends, so that the markup
/// and its styles live in one place; a templates directory may replace it.
const LAYOUT: (&str, &str) = ("layout.html", include_str!("../templates/layout.html"));

/// The three files of one built-in language, compiled into the binary.
macro_rules! builtin_language {
    ($tag:literal) => {
        [
            (
                concat!($tag, "/subject.txt"),
                include_str!(concat!("../templates/", $tag, "/subject.txt")),
            ),
            (
                concat!($tag, "/body.txt"),
                include_str!(concat!("../templates/", $tag, "/body.txt")),
            ),
            (
                concat!($tag, "/body.html"),
                include_str!(concat!("../templates/", $tag, "/body.html")),
            ),
        ]
    };
}

/// The languages that ship: those of the users onboarding backends send
/// most. `pt` is written in Brazilian Portuguese; a directory can replace
/// any of them.
const BUILTIN: [[(&str, &str); 3]; 7] = [
    builtin_language!("en"),
    builtin_language!("de"),
    builtin_language!("fr"),
    builtin_language!("es"),
    builtin_language!("it"),
    builtin_language!("pt"),
    builtin_language!("ja"),
];

/// What a template may use.
#[derive(Debug, Serialize)]
pub struct EmailContext<'a> {
    pub display_name: &'a str,
    pub link: &'a str,
    /// `2026-12-04 16:57 UTC`
    pub expires_at: String,
    pub valid_minutes: i64,
}

impl<'a> EmailContext<'a> {
    pub fn new(display_name: &'a str, link: &'a str, now_ms: i64, expires_ms: i64) -> Self {
        let expires = DateTime::<Utc>::from_timestamp_millis(expires_ms).unwrap_or_default();
        Self {
            display_name,
            link,
            expires_at: expires.format("%Y-%m-%d %H:%M UTC").to_string(),
            valid_minutes: ((expires_ms - now_ms).max(0) + 59_999) / 60_000,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct RenderedEmail {
    pub language: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    tera: Tera,
    languages: BTreeSet<String>,
}

impl Templates {
    /// The built-in templates, plus (and overridden by) the
    /// languages in `dir`: one subdirectory per language tag holding
    /// `subject.txt`, `body.txt` and `body.html`, and optionally a
    /// `layout.html` beside them for the frame the bodies extend.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut sources: Vec<(String, String)> = BUILTIN
            .iter()
            .flatten()
            .chain([&LAYOUT])
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
            .collect();

        if let Some(dir) = dir {
            let entries = std::fs::read_dir(dir)
                .with_context(|| format!("cannot read templates from {}", dir.display()))?;
            for entry in entries {
                let entry = entry?;
                if entry.file_name() == LAYOUT.0 {
                    let text = std::fs::read_to_string(entry.path())
                        .with_context(|| format!("cannot read {}", entry.path().display()))?;
                    sources.retain(|(n, _)| n != LAYOUT.0);
                    sources.push((LAYOUT.0.to_owned(), text));
                    continue;
                }
                if !entry.file_type()?.is_dir() {
                    continue;
                }
                let language = entry.file_name().to_string_lossy().to_lowercase();
                for part in PARTS {
                    let path = entry.path().join(part);
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("template {} is missing", path.display()))?;
                    let name = format!("{language}/{part}");
                    sources.retain(|(n, _)| *n != name);
                    sources.push((name, text));
                }
            }
        }

        let mut tera = Tera::new();
        tera.add_raw_templates(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())))
            .context("an email template does not parse")?;
        let languages = sources
            .iter()
            .filter_map(|(name, _)| name.split_once('/').map(|(lang, _)| lang.to_owned()))
            .collect();
        let templates = Self { tera, languages };

        // Render every language once now, so that a broken template stops
        // start-up instead of failing jobs later.
        for language in &templates.languages {
            let sample = EmailContext::new("Sample Name", "https://example.test/r", 0, 3_600_000);
            templates
                .render_language(language, &sample)
                .with_context(|| format!("the {language} templates do not render"))?;
        }
        Ok(templates)
    }

    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.iter().map(String::as_str)
    }

    /// Renders in the best language for `preferred` (a BCP 47 tag): the
    /// exact tag, then its primary language, then English.
    pub fn render(&self, preferred: &str, ctx: &EmailContext<'_>) -> anyhow::Result<RenderedEmail> {
        self.render_language(self.pick(preferred), ctx)
    }

    fn pick(&self, preferred: &str) -> &str {
        let tag = preferred.to_lowercase();
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        [tag.as_str(), primary]
            .into_iter()
            .find_map(|candidate| self.languages.get(candidate))
            .map_or(DEFAULT_LANGUAGE, String::as_str)
    }

    fn render_language(
        &self,
        language: &str,
        ctx: &EmailContext<'_>,
    ) -> anyhow::Result<RenderedEmail> {
        let context = Context::from_serialize(ctx)?;
        let render = |part: &str| self.tera.render(&format!("{language}/{part}"), &context);
        let subject = render("subject.txt")?;
        // A subject is one line, whatever the template did with whitespace.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        if subject.is_empty() {
            bail!("the subject is empty");
        }
        Ok(RenderedEmail {
            language: language.to_owned(),
            subject,
            text: render("body.txt")?,
            html: render("body.html")?,
        })
    }
}

/// Builds the MIME message. lettre encodes non-ASCII names and subjects as
/// RFC 2047 words and quotes names with special characters; line breaks and
/// other control characters, which lettre cannot encode (it panics on them),
/// become spaces first. So no display name can add a header or stop a send.
///
/// The Message-ID is derived from the job, so that the rare second copy of
/// an email (see the README on duplicates) carries the same id and mail
/// clients can fold the two.
pub fn build_message(
    from: &Mailbox,
    to_email: &str,
    to_name: &str,
    job_id: &uuid::Uuid,
    email: RenderedEmail,
) -> Result<Message, String> {
    let address = to_email
        .parse()
        .map_err(|_| "the recipient address is not valid".to_owned())?;
    let name = to_name
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let name = Some(name).filter(|n| !n.is_empty());
    Message::builder()
        .message_id(Some(format!(
            "<{}@{}>",
            job_id.simple(),
            from.email.domain()
        )))
        .from(from.clone())
        .to(Mailbox::new(name, address))
        .subject(email.subject)
        .multipart(MultiPart::alternative_plain_html(email.text, email.html))
        .map_err(|err| format!("the message cannot be built: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_english_and_falls_back() {
        let templates = Templates::load(None).unwrap();
        let ctx = EmailContext::new("Anna <Müller>", "https://x.test/r?a=1&b=2", 0, 3_600_000);
        let email = templates.render("xx-YY", &ctx).unwrap();
        assert_eq!(email.language, "en");
        assert_eq!(email.subject, "Set up your passkey");
        assert!(email.text.contains("https://x.test/r?a=1&b=2"));
        assert!(email.text.contains("Anna <Müller>"));
        assert!(email.text.contains("1970-01-01 01:00 UTC"));
        assert!(email.text.contains("60 minutes"));
        assert!(email.html.contains("Anna &lt;Müller&gt;"));
        assert!(email.html.contains("a=1&amp;b=2"));
    }

    #[test]
    fn every_built_in_language_renders_the_link_and_the_name() {
        let templates = Templates::load(None).unwrap();
        let ctx = EmailContext::new("Zoë <Ø>", "https://x.test/r?a=1&b=2", 0, 3_600_000);
        let cases = [
            ("de-CH", "de", "Richten Sie Ihren Passkey ein"),
            ("fr", "fr", "Configurez votre clé d’accès"),
            ("es-MX", "es", "Configura tu llave de acceso"),
            ("it", "it", "Configura la tua passkey"),
            ("pt-BR", "pt", "Configure sua chave de acesso"),
            ("ja", "ja", "パスキーを設定してください"),
            ("en-GB", "en", "Set up your passkey"),
        ];
        for (preferred, language, subject) in cases {
            let email = templates.render(preferred, &ctx).unwrap();
            assert_eq!(email.language, language);
            assert_eq!(email.subject, subject);
            assert!(
                email.text.contains("https://x.test/r?a=1&b=2"),
                "{language}"
            );
            assert!(email.text.contains("Zoë <Ø>"), "{language}");
            assert!(email.text.contains("1970-01-01 01:00 UTC"), "{language}");
            assert!(email.text.contains("60 "), "{language}");
            assert!(
                email
                    .html
                    .contains(r#"href="https://x.test/r?a=1&amp;b=2""#),
                "{language}"
            );
            assert!(email.html.contains("Zoë &lt;Ø&gt;"), "{language}");
            assert!(email.html.contains(&format!(r#"<html lang="{language}">"#)));
            assert!(
                !email.text.contains("{{") && !email.html.contains("{{"),
                "{language}"
            );
        }
        assert_eq!(templates.languages().count(), 7);
    }

    #[test]
    fn picks_languages_from_a_directory() {
        let dir = std::env::temp_dir().join(format!("passlink-tpl-{}", std::process::id()));
        let de = dir.join("de");
        std::fs::create_dir_all(&de).unwrap();
        std::fs::write(de.join("subject.txt"), "Passkey\neinrichten").unwrap();
        std::fs::write(de.join("body.txt"), "Hallo {{ display_name }}: {{ link }}").unwrap();
        std::fs::write(de.join("body.html"), "<p>{{ link }}</p>").unwrap();
        let templates = Templates::load(Some(&dir)).unwrap();
        let ctx = EmailContext::new("Jörg", "https://x.test/", 0, 60_000);
        let email = templates.render("de-CH", &ctx).unwrap();
        assert_eq!(email.language, "de");
        assert_eq!(email.subject, "Passkey einrichten");
        assert_eq!(templates.render("fr", &ctx).unwrap().language, "fr");
        assert_eq!(templates.render("xx", &ctx).unwrap().language, "en");

        std::fs::remove_file(de.join("body.html")).unwrap();
        assert!(Templates::load(Some(&dir)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hostile_names_cannot_add_headers() {
        let from: Mailbox = "Passlink <no-reply@passlink.test>".parse().unwrap();
        let email = RenderedEmail {
            language: "en".into(),
            subject: "Set up your passkey".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
        };
        let message = build_message(
            &from,
            "jörg@exämple.test",
            "Jörg \"the\" O'Brien\r\nBcc: evil@x.test",
            &uuid::Uuid::nil(),
            email,
        )
        .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        let headers = raw.split("\r\n\r\n").next().unwrap();
        assert!(!headers.lines().any(|l| l.starts_with("Bcc")), "{headers}");
        assert!(headers.contains("=?utf-8?"), "{headers}");
        assert!(headers.contains("Message-ID: <00000000000000000000000000000000@passlink.test>"));
    }
}
