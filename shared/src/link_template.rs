//! Link templates in Go `text/template` placeholder syntax.
//!
//! Only the four placeholders of the contract are accepted (`{{.UserID}}`,
//! `{{.OrgID}}`, `{{.CodeID}}`, `{{.Code}}`), with optional spaces and Go's
//! trim markers (`{{- .Code -}}`). Anything else inside braces, an unclosed
//! action or a stray brace in the literal text is an error when the request
//! arrives, so that no email ever carries a half-rendered link.
//!
//! Values are percent-encoded as URL components when rendered. Go's
//! `text/template` inserts them raw; encoding keeps a link valid even for
//! user ids with characters such as `&` or `/`, and changes nothing for the
//! ids and codes Passlink issues itself.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

/// What may stay unencoded: RFC 3986 unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The longest template the contract allows, in characters.
pub const MAX_TEMPLATE_CHARS: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    UserId,
    OrgId,
    CodeId,
    Code,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// A parsed template, ready to render many times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkTemplate {
    parts: Vec<Part>,
}

/// Why a template was refused. Positions count characters from 1.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template must be 1 to {MAX_TEMPLATE_CHARS} characters long")]
    Length,
    #[error("the template has an unclosed {{{{ at character {0}")]
    Unclosed(usize),
    #[error(
        "the template has a stray brace at character {0}; write placeholders as {{{{.Code}}}} \
         and literal braces as %7B or %7D"
    )]
    StrayBrace(usize),
    #[error(
        "the template uses {0:?} at character {1}; the placeholders are {{{{.UserID}}}}, \
         {{{{.OrgID}}}}, {{{{.CodeID}}}} and {{{{.Code}}}}"
    )]
    UnknownPlaceholder(String, usize),
    #[error("the rendered link is not a valid URL: {0}")]
    InvalidUrl(String),
    #[error("the rendered link uses the scheme {0:?}, which is not allowed")]
    Scheme(String),
    #[error("the template has no {{{{.Code}}}}, so its link could not register a passkey")]
    NoCode,
}

/// The values a link is filled with.
#[derive(Clone, Copy, Debug)]
pub struct LinkValues<'a> {
    pub user_id: &'a str,
    pub org_id: &'a str,
    pub code_id: &'a str,
    pub code: &'a str,
}

impl LinkTemplate {
    /// Parses a template and checks its length.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let chars = source.chars().count();
        if chars == 0 || chars > MAX_TEMPLATE_CHARS {
            return Err(TemplateError::Length);
        }
        Self::parse_unbounded(source)
    }

    /// Parses a template of any length; for configured defaults, which may
    /// carry a long public base URL.
    pub fn parse_unbounded(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        let mut trim_next = false;

        loop {
            let Some(open) = rest.find("{{") else {
                push_text(&mut parts, rest, offset, trim_next, false)?;
                break;
            };

            let mut after = &rest[open + 2..];
            let trim_before = starts_with_trim_marker(after);
            push_text(&mut parts, &rest[..open], offset, trim_next, trim_before)?;
            if trim_before {
                after = &after[1..];
            }

            let action_at = char_pos(source, offset + open);
            let Some(close) = after.find("}}") else {
                return Err(TemplateError::Unclosed(action_at));
            };

            let mut inner = &after[..close];
            trim_next = ends_with_trim_marker(inner);
            if trim_next {
                inner = &inner[..inner.len() - 1];
            }
            parts.push(Part::Field(field(inner.trim(), action_at)?));

            let consumed = rest.len() - after.len() + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }

        Ok(Self { parts })
    }

    /// Whether the link carries the code (without it, it is useless).
    pub fn has_code(&self) -> bool {
        self.parts.contains(&Part::Field(Field::Code))
    }

    /// Fills the template with `values`, each percent-encoded.
    pub fn render(&self, values: &LinkValues<'_>) -> String {
        let mut out = String::with_capacity(256);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => {
                    let value = match field {
                        Field::UserId => values.user_id,
                        Field::OrgId => values.org_id,
                        Field::CodeId => values.code_id,
                        Field::Code => values.code,
                    };
                    out.extend(utf8_percent_encode(value, COMPONENT));
                }
            }
        }
        out
    }

    /// Renders with sample values and checks that the result is a link a
    /// person may safely open.
    pub fn check(&self, allowed_schemes: &[String]) -> Result<(), TemplateError> {
        self.check_for("user", allowed_schemes)
    }

    /// The same with the real user id, which may not fit everywhere a
    /// sample does (a user id with a space in a host name, say).
    pub fn check_for(
        &self,
        user_id: &str,
        allowed_schemes: &[String],
    ) -> Result<(), TemplateError> {
        let sample = self.render(&LinkValues {
            user_id,
            org_id: "org",
            code_id: "00000000-0000-4000-8000-000000000000",
            code: "SampleCode12",
        });
        check_link(&sample, allowed_schemes)
    }
}

impl fmt::Display for LinkTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(text) => f.write_str(text)?,
                Part::Field(Field::UserId) => f.write_str("{{.UserID}}")?,
                Part::Field(Field::OrgId) => f.write_str("{{.OrgID}}")?,
                Part::Field(Field::CodeId) => f.write_str("{{.CodeID}}")?,
                Part::Field(Field::Code) => f.write_str("{{.Code}}")?,
            }
        }
        Ok(())
    }
}

/// Accepts an absolute `http`/`https` URL with a host, or a URL whose scheme
/// is in `allowed_schemes` (app links). `javascript:`, `data:` and every
/// other scheme are refused.
///
/// The link is checked as written, not as a URL parser would repair it:
/// the email carries these exact characters, and a space, a line break or a
/// malformed escape that a parser quietly fixes would break the link in a
/// mail client.
pub fn check_link(link: &str, allowed_schemes: &[String]) -> Result<(), TemplateError> {
    if let Some(fault) = written_fault(link) {
        return Err(TemplateError::InvalidUrl(fault));
    }
    let url = Url::parse(link).map_err(|err| TemplateError::InvalidUrl(err.to_string()))?;
    let scheme = url.scheme();
    match scheme {
        "http" | "https" if has_authority(link, scheme) => Ok(()),
        "http" | "https" => Err(TemplateError::InvalidUrl(format!(
            "the link has no host; write it as {scheme}://host/..."
        ))),
        _ if allowed_schemes
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme)) =>
        {
            Ok(())
        }
        _ => Err(TemplateError::Scheme(scheme.to_owned())),
    }
}

/// The first character of `link` that has no place in a link as written:
/// whitespace and control characters, the delimiters that end a link in
/// text or HTML, a backslash, and a `%` not followed by two hex digits.
fn written_fault(link: &str) -> Option<String> {
    let bytes = link.as_bytes();
    for (at, c) in link.char_indices() {
        let refused = c.is_whitespace()
            || c.is_control()
            || matches!(c, '\\' | '"' | '<' | '>' | '`' | '\u{feff}' | '\u{200b}');
        if refused {
            return Some(format!(
                "the link contains {} at character {}; percent-encode it",
                describe(c),
                char_pos(link, at)
            ));
        }
        let escape_ok = bytes.len() > at + 2
            && bytes[at + 1].is_ascii_hexdigit()
            && bytes[at + 2].is_ascii_hexdigit();
        if c == '%' && !escape_ok {
            return Some(format!(
                "the link has a % at character {} that is not followed by two hex digits; \
                 write a literal % as %25",
                char_pos(link, at)
            ));
        }
    }
    None
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\n' | '\r' => "a line break".to_owned(),
        '\t' => "a tab".to_owned(),
        c if c.is_ascii_graphic() => format!("{c:?}"),
        c => format!("U+{:04X}", u32::from(c)),
    }
}

/// Whether `link` spells `scheme://` followed by a non-empty authority; URL
/// parsers accept `https:/host` and `https:///host` and repair them.
fn has_authority(link: &str, scheme: &str) -> bool {
    link.get(scheme.len() + 1..)
        .and_then(|rest| rest.strip_prefix("//"))
        .is_some_and(|rest| !rest.starts_with(['/', '?', '#']) && !rest.is_empty())
}

fn field(name: &str, at: usize) -> Result<Field, TemplateError> {
    match name {
        ".UserID" => Ok(Field::UserId),
        ".OrgID" => Ok(Field::OrgId),
        ".CodeID" => Ok(Field::CodeId),
        ".Code" => Ok(Field::Code),
        other => Err(TemplateError::UnknownPlaceholder(
            other.chars().take(40).collect(),
            at,
        )),
    }
}

/// Adds literal text, applying Go's trim markers and refusing stray braces.
fn push_text(
    parts: &mut Vec<Part>,
    text: &str,
    offset: usize,
    trim_start: bool,
    trim_end: bool,
) -> Result<(), TemplateError> {
    if let Some(at) = text.find(['{', '}']) {
        let source_at = offset + at;
        return Err(TemplateError::StrayBrace(source_at + 1));
    }
    let mut text = text;
    if trim_start {
        text = text.trim_start();
    }
    if trim_end {
        text = text.trim_end();
    }
    if !text.is_empty() {
        parts.push(Part::Text(text.to_owned()));
    }
    Ok(())
}

/// `{{- ` trims; `{{-3}}` would be a number in Go, so a space must follow.
fn starts_with_trim_marker(after_open: &str) -> bool {
    let mut chars = after_open.chars();
    chars.next() == Some('-') && chars.next().is_some_and(char::is_whitespace)
}

fn ends_with_trim_marker(inner: &str) -> bool {
    let mut chars = inner.chars().rev();
    chars.next() == Some('-') && chars.next().is_some_and(char::is_whitespace)
}

fn char_pos(source: &str, byte_offset: usize) -> usize {
    source[..byte_offset].chars().count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: LinkValues<'static> = LinkValues {
        user_id: "123",
        org_id: "456",
        code_id: "e2a48d6a-362b-4db6-a1fb-34feab84dc62",
        code: "SKJd342kAbCd",
    };

    fn render(template: &str) -> String {
        LinkTemplate::parse(template).unwrap().render(&VALUES)
    }

    #[test]
    fn renders_the_contract_example() {
        let t = "https://example.com/passkey/register?userID={{.UserID}}&orgID={{.OrgID}}\
                 &codeID={{.CodeID}}&code={{.Code}}";
        assert_eq!(
            render(t),
            "https://example.com/passkey/register?userID=123&orgID=456\
             &codeID=e2a48d6a-362b-4db6-a1fb-34feab84dc62&code=SKJd342kAbCd"
        );
    }

    #[test]
    fn spaces_and_trim_markers() {
        assert_eq!(render("https://x/{{ .Code }}"), "https://x/SKJd342kAbCd");
        assert_eq!(
            render("https://x/ {{- .Code -}} /y"),
            "https://x/SKJd342kAbCd/y"
        );
        assert_eq!(render("https://x/{{.Code}}{{.CodeID}}").len(), 10 + 12 + 36);
    }

    #[test]
    fn values_are_encoded_as_components() {
        let t = LinkTemplate::parse("https://x/?u={{.UserID}}").unwrap();
        let values = LinkValues {
            user_id: "a&b/c d",
            ..VALUES
        };
        assert_eq!(t.render(&values), "https://x/?u=a%26b%2Fc%20d");
    }

    #[test]
    fn refuses_broken_and_unknown_actions() {
        use TemplateError::*;
        let cases = [
            ("https://x/{{.Code}", Unclosed(11)),
            ("https://x/{{.Code", Unclosed(11)),
            ("https://x/{.Code}}", StrayBrace(11)),
            ("https://x/{{.Code}}}", StrayBrace(20)),
            ("https://x/}}", StrayBrace(11)),
            (
                "https://x/{{.code}}",
                UnknownPlaceholder(".code".into(), 11),
            ),
            (
                "https://x/{{.Email}}",
                UnknownPlaceholder(".Email".into(), 11),
            ),
            ("https://x/{{}}", UnknownPlaceholder(String::new(), 11)),
            (
                "https://x/{{.Code | html}}",
                UnknownPlaceholder(".Code | html".into(), 11),
            ),
            (
                "https://x/{{.Code {{.UserID}}",
                UnknownPlaceholder(".Code {{.UserID".into(), 11),
            ),
            ("", Length),
        ];
        for (template, expected) in cases {
            assert_eq!(LinkTemplate::parse(template), Err(expected), "{template}");
        }
        assert_eq!(LinkTemplate::parse(&"a".repeat(201)), Err(Length));
        assert!(LinkTemplate::parse(&format!("https://x/{}", "é".repeat(190))).is_ok());
    }

    #[test]
    fn checks_the_rendered_link() {
        let ok = |t: &str| LinkTemplate::parse(t).unwrap().check(&["myapp".to_owned()]);
        assert!(ok("https://example.com/r?c={{.Code}}").is_ok());
        assert!(ok("http://localhost:8080/r#c={{.Code}}").is_ok());
        assert!(ok("myapp://register/{{.Code}}").is_ok());
        assert!(matches!(
            ok("javascript:alert({{.Code}})"),
            Err(TemplateError::Scheme(_))
        ));
        assert!(matches!(
            ok("data:text/html,{{.Code}}"),
            Err(TemplateError::Scheme(_))
        ));
        assert!(matches!(
            ok("/relative/{{.Code}}"),
            Err(TemplateError::InvalidUrl(_))
        ));
    }

    #[test]
    fn refuses_links_a_mail_client_would_break() {
        let check = |t: &str| LinkTemplate::parse(t).unwrap().check(&["myapp".to_owned()]);
        let refused = [
            "https://a.test/\n{{.Code}}",
            "https://a.test/\r\n{{.Code}}",
            "https://a.test/ {{.Code}}",
            " https://a.test/{{.Code}}",
            "https://a.test/{{.Code}} ",
            "https://a.test/\t{{.Code}}",
            "https://a.test/\u{0}{{.Code}}",
            "https://a.test/\u{a0}{{.Code}}",
            "https://a.test/\u{200b}{{.Code}}",
            "https://a.test/\u{2028}{{.Code}}",
            "https:///{{.Code}}",
            "https:/a.test/{{.Code}}",
            "https:a.test/{{.Code}}",
            "https://?c={{.Code}}",
            "https://a.test/%zz{{.Code}}",
            "https://a.test/%{{.Code}}",
            "https://a.test/{{.Code}}%2",
            "https://a.test\\@evil.test/{{.Code}}",
            "https://a.test/\"{{.Code}}",
            "https://a.test/<{{.Code}}>",
            "myapp://r/ {{.Code}}",
        ];
        for template in refused {
            assert!(
                matches!(check(template), Err(TemplateError::InvalidUrl(_))),
                "{template:?}: {:?}",
                check(template)
            );
        }
        let accepted = [
            "https://a.test/%20{{.Code}}",
            "https://a.test/r?c={{.Code}}&p=100%25",
            "HTTPS://a.test/{{.Code}}",
            "https://user@a.test:8443/{{.Code}}",
            "https://[::1]/{{.Code}}",
            "https://bücher.test/{{.Code}}",
            "myapp:register?c={{.Code}}",
        ];
        for template in accepted {
            assert_eq!(check(template), Ok(()), "{template:?}");
        }
        let message = check("https://a.test/ {{.Code}}").unwrap_err().to_string();
        assert!(message.contains("a space at character 16"), "{message}");
    }

    #[test]
    fn display_round_trips() {
        let t = LinkTemplate::parse("https://x/?a={{ .UserID }}&c={{.Code}}").unwrap();
        assert_eq!(t.to_string(), "https://x/?a={{.UserID}}&c={{.Code}}");
    }
}
