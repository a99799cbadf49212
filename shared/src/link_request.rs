//! The create-link request as the contract defines it: decoding (protojson
//! field names, unknown fields refused, messages only as objects) and
//! validation (the medium oneof, the link template). Independent of the
//! transport, so that every protocol and the fuzz targets share it.

use serde::Deserialize;

use crate::error::ApiError;
use crate::json::Object;
use crate::link_template::{LinkTemplate, TemplateError};
use crate::user::validate_user_id;

/// The request body; field names as protojson writes and reads them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLinkBody {
    #[serde(rename = "userId", alias = "user_id", default)]
    user_id: Option<String>,
    #[serde(rename = "sendLink", alias = "send_link", default)]
    send_link: Option<Object<SendLinkBody>>,
    #[serde(rename = "returnCode", alias = "return_code", default)]
    return_code: Option<Object<ReturnCodeBody>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendLinkBody {
    #[serde(rename = "urlTemplate", alias = "url_template", default)]
    url_template: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnCodeBody {}

/// What the caller asked for, validated.
#[derive(Debug, PartialEq, Eq)]
pub enum Medium {
    /// Email the link; `None` uses the configured default link.
    Send(Option<String>),
    Return,
}

/// A request for a link as any protocol states it, before validation.
#[derive(Debug, PartialEq, Eq)]
pub struct LinkRequest<'a> {
    pub user_id: &'a str,
    /// `sendLink`, with its template when it has one.
    pub send_link: Option<Option<String>>,
    pub return_code: bool,
}

impl LinkRequest<'_> {
    /// Checks the user id, the oneof and the template: the one check JSON,
    /// gRPC and gRPC-web all make, so that they refuse alike.
    pub fn validate(&self, allowed_schemes: &[String]) -> Result<Medium, ApiError> {
        validate_user_id(self.user_id)?;
        match (&self.send_link, self.return_code) {
            (Some(_), true) => Err(ApiError::invalid(
                "LINK-MEDIUM-BOTH",
                "Give either sendLink or returnCode, not both",
            )),
            (None, true) => Ok(Medium::Return),
            (Some(Some(template)), false) => {
                check_template(template, self.user_id, allowed_schemes)?;
                Ok(Medium::Send(Some(template.clone())))
            }
            (Some(None) | None, false) => Ok(Medium::Send(None)),
        }
    }
}

/// Decodes a JSON body (an empty body means `{}`) into a request; a body
/// `userId` must agree with the path.
pub fn from_json<'a>(body: &[u8], path_user_id: &'a str) -> Result<LinkRequest<'a>, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let Object(body) = decode_json::<Object<CreateLinkBody>>(body)?;
    if body.user_id.as_deref().is_some_and(|id| id != path_user_id) {
        return Err(ApiError::invalid(
            "LINK-USER-MISMATCH",
            "The userId in the body differs from the one in the path",
        ));
    }
    Ok(LinkRequest {
        user_id: path_user_id,
        send_link: body.send_link.map(|Object(send)| send.url_template),
        return_code: body.return_code.is_some(),
    })
}

/// Decodes and validates a JSON body, as the API does.
pub fn decode(
    body: &[u8],
    path_user_id: &str,
    allowed_schemes: &[String],
) -> Result<Medium, ApiError> {
    from_json(body, path_user_id)?.validate(allowed_schemes)
}

/// Decodes JSON with serde's message, which names the field and position;
/// the request holds no secret it could echo.
pub fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| {
        let message = without_string_values(&err.to_string());
        ApiError::invalid(
            "REQ-JSON-INVALID",
            format!("The request body is not valid: {message}"),
        )
    })
}

/// serde quotes a string it could not use (`invalid type: string "…"`);
/// that string may be a code sent in the wrong place, and error messages
/// never carry one. Field names (in backticks) stay: they say what is wrong.
fn without_string_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("string \"") {
        out.push_str(&rest[..at + "string \"".len()]);
        let value = &rest[at + "string \"".len()..];
        // The value ends at the first quote that is not escaped.
        let mut end = value.len();
        let mut escaped = false;
        for (index, c) in value.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = index;
                    break;
                }
                _ => escaped = false,
            }
        }
        out.push('…');
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// Refuses a template that would not make a safe, complete link: broken,
/// without the code, or not a valid link once filled with this user's id
/// (the organization and code are not known yet; a sample stands in).
pub fn check_template(
    template: &str,
    user_id: &str,
    allowed_schemes: &[String],
) -> Result<(), ApiError> {
    let to_error = |err: TemplateError| {
        let id = match err {
            TemplateError::Length => "LINK-TEMPLATE-LENGTH",
            TemplateError::Unclosed(_) | TemplateError::StrayBrace(_) => "LINK-TEMPLATE-SYNTAX",
            TemplateError::UnknownPlaceholder(..) => "LINK-TEMPLATE-PLACEHOLDER",
            TemplateError::NoCode => "LINK-TEMPLATE-NO-CODE",
            TemplateError::InvalidUrl(_) | TemplateError::Scheme(_) => "LINK-TEMPLATE-URL",
        };
        ApiError::invalid(id, format!("urlTemplate is not valid: {err}"))
    };
    let parsed = LinkTemplate::parse(template).map_err(to_error)?;
    if !parsed.has_code() {
        return Err(to_error(TemplateError::NoCode));
    }
    parsed.check_for(user_id, allowed_schemes).map_err(to_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_do_not_repeat_strings() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Holder {
            code: Object<CreateLinkBody>,
        }
        let err = decode_json::<Holder>(br#"{"code":"SECRETCODE12"}"#).unwrap_err();
        assert!(!err.message.contains("SECRETCODE12"), "{}", err.message);
        assert!(
            err.message.contains("invalid type: string \"…\""),
            "{}",
            err.message
        );
        let err = decode_json::<Holder>(br#"{"code":"a\"SECRET"}"#).unwrap_err();
        assert!(!err.message.contains("SECRET"), "{}", err.message);
        let err = decode_json::<Holder>(br#"{"nope":1}"#).unwrap_err();
        assert!(
            err.message.contains("`nope`"),
            "field names stay: {}",
            err.message
        );
    }

    fn parse(json: &str) -> Result<Medium, ApiError> {
        decode(json.as_bytes(), "u1", &[])
    }

    #[test]
    fn media_of_the_contract() {
        let template = "https://example.com/r?u={{.UserID}}&c={{.Code}}";
        assert_eq!(
            parse(&format!(r#"{{"sendLink":{{"urlTemplate":"{template}"}}}}"#)).unwrap(),
            Medium::Send(Some(template.to_owned()))
        );
        assert_eq!(
            parse(&format!(
                r#"{{"send_link":{{"url_template":"{template}"}}}}"#
            ))
            .unwrap(),
            Medium::Send(Some(template.to_owned()))
        );
        assert_eq!(parse(r#"{"sendLink":{}}"#).unwrap(), Medium::Send(None));
        assert_eq!(parse(r#"{}"#).unwrap(), Medium::Send(None));
        assert_eq!(parse(r#"{"sendLink":null}"#).unwrap(), Medium::Send(None));
        assert_eq!(parse(r#"{"returnCode":{}}"#).unwrap(), Medium::Return);
        assert_eq!(parse(r#"{"return_code":{}}"#).unwrap(), Medium::Return);
        assert_eq!(
            parse(r#"{"userId":"u1","returnCode":{}}"#).unwrap(),
            Medium::Return
        );
    }

    #[test]
    fn refusals() {
        let cases = [
            (r#"{"sendLink":{},"returnCode":{}}"#, "LINK-MEDIUM-BOTH"),
            (r#"{"sendLink":{},"extra":1}"#, "REQ-JSON-INVALID"),
            (r#"{"returnCode":{"x":1}}"#, "REQ-JSON-INVALID"),
            (r#"{"sendLink":{"urlTemplate":""}}"#, "LINK-TEMPLATE-LENGTH"),
            (
                r#"{"sendLink":{"urlTemplate":"https://x/{{.Code}"}}"#,
                "LINK-TEMPLATE-SYNTAX",
            ),
            (
                r#"{"sendLink":{"urlTemplate":"https://x/{{.Nope}}"}}"#,
                "LINK-TEMPLATE-PLACEHOLDER",
            ),
            (
                r#"{"sendLink":{"urlTemplate":"javascript:x({{.Code}})"}}"#,
                "LINK-TEMPLATE-URL",
            ),
            (r#"{"sendLink":"x"}"#, "REQ-JSON-INVALID"),
            (r#"{"sendLink":[]}"#, "REQ-JSON-INVALID"),
            (r#"{"returnCode":[]}"#, "REQ-JSON-INVALID"),
            (r#"[]"#, "REQ-JSON-INVALID"),
            (r#"{"sendLink":{},"send_link":{}}"#, "REQ-JSON-INVALID"),
            (r#"{"userId":"u2"}"#, "LINK-USER-MISMATCH"),
            (r#"[1]"#, "REQ-JSON-INVALID"),
            (r#"{"#, "REQ-JSON-INVALID"),
        ];
        for (json, id) in cases {
            assert_eq!(parse(json).unwrap_err().id, id, "{json}");
        }
        let long = format!(
            r#"{{"sendLink":{{"urlTemplate":"https://x/{}"}}}}"#,
            "a".repeat(191)
        );
        assert_eq!(parse(&long).unwrap_err().id, "LINK-TEMPLATE-LENGTH");
    }
}
