//! Users of the directory: who a link is for and where its email goes.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The longest user or organization id, in characters.
pub const MAX_ID_CHARS: usize = 200;
/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// RFC 5321's limit on a forward path.
const MAX_EMAIL_BYTES: usize = 254;

/// A user as the admin API and the NDJSON import take it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    #[serde(rename = "userId", alias = "user_id", default)]
    pub user_id: Option<String>,
    #[serde(rename = "organizationId", alias = "organization_id")]
    pub organization_id: String,
    pub email: String,
    #[serde(rename = "displayName", alias = "display_name", default)]
    pub display_name: Option<String>,
    #[serde(rename = "preferredLanguage", alias = "preferred_language", default)]
    pub preferred_language: Option<String>,
}

/// A validated directory entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    #[serde(rename = "userId")]
    pub id: String,
    #[serde(rename = "organizationId")]
    pub organization_id: String,
    pub email: String,
    #[serde(rename = "displayName")]
    pub display_name: String,
    #[serde(rename = "preferredLanguage")]
    pub preferred_language: String,
}

impl UserInput {
    /// Checks every field. `path_id` is the id from the URL, when there is
    /// one; a body id must then agree with it.
    pub fn validate(self, path_id: Option<&str>) -> Result<User, ApiError> {
        let id = match (path_id, self.user_id) {
            (Some(path), Some(body)) if path != body => {
                return Err(ApiError::invalid(
                    "USER-ID-MISMATCH",
                    "The userId in the body differs from the one in the path",
                ));
            }
            (Some(path), _) => path.to_owned(),
            (None, Some(body)) => body,
            (None, None) => return Err(ApiError::invalid("USER-ID-MISSING", "userId is required")),
        };
        validate_user_id(&id)?;

        let org = self.organization_id;
        if !valid_id(&org) {
            return Err(ApiError::invalid(
                "USER-ORG-INVALID",
                "organizationId must be 1 to 200 characters, not blank, without control characters",
            ));
        }

        let email = self.email.trim().to_owned();
        if !valid_email(&email) {
            return Err(ApiError::invalid(
                "USER-EMAIL-INVALID",
                "email is not a valid address",
            ));
        }

        let display_name = self.display_name.unwrap_or_default().trim().to_owned();
        if display_name.chars().count() > MAX_NAME_CHARS
            || display_name.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                "USER-NAME-INVALID",
                "displayName must be at most 200 characters without control characters \
                 such as line breaks",
            ));
        }

        let language = self.preferred_language.unwrap_or_else(|| "en".to_owned());
        if oxilangtag::LanguageTag::parse(language.as_str()).is_err() {
            return Err(ApiError::invalid(
                "USER-LANGUAGE-INVALID",
                "preferredLanguage is not a BCP 47 language tag",
            ));
        }

        Ok(User {
            id,
            organization_id: org,
            email,
            display_name,
            preferred_language: language,
        })
    }
}

/// The contract's rule for a user id in a path: 1 to 200 characters. Control
/// characters are refused too, as no directory id has them and they would
/// only end up in logs.
pub fn validate_user_id(id: &str) -> Result<(), ApiError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "USER-ID-INVALID",
            "userId must be 1 to 200 characters, not blank, \".\" or \"..\", without control \
             characters",
        ))
    }
}

fn valid_id(id: &str) -> bool {
    let chars = id.chars().count();
    (1..=MAX_ID_CHARS).contains(&chars)
        && !id.chars().any(char::is_control)
        // Blank ids and the path segments "." and ".." name nobody; clients
        // and proxies would also rewrite them in URLs.
        && !id.trim().is_empty()
        && id != "."
        && id != ".."
}

/// An address the worker can send to (non-ASCII local parts and domains
/// included) and that fits an SMTP forward path. The address is tried in a
/// message built the way the worker builds one: lettre parses some forms
/// (quoted local parts, address literals) that it then cannot put into an
/// envelope, and such a user would only ever get dead-lettered jobs.
pub fn valid_email(email: &str) -> bool {
    let Ok(address) = email.parse::<lettre::Address>() else {
        return false;
    };
    let from = lettre::Address::new("check", "passlink.invalid");
    email.len() <= MAX_EMAIL_BYTES
        && from.is_ok_and(|from| {
            lettre::Message::builder()
                .from(lettre::message::Mailbox::new(None, from))
                .to(lettre::message::Mailbox::new(None, address))
                .body(String::new())
                .is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> Result<UserInput, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn accepts_the_generated_users() {
        let lines = [
            r#"{"userId": "200000000000000000", "organizationId": "69629023906488334", "email": "anna.muller.0@example.test", "displayName": "Anna Müller", "preferredLanguage": "de"}"#,
            r#"{"userId": "200000000000000007", "organizationId": "80000000000000001", "email": "jörg.7@exämple.test", "displayName": "Jörg 王", "preferredLanguage": "xx-YY"}"#,
        ];
        for line in lines {
            let user = input(line).unwrap().validate(None).unwrap();
            assert!(!user.email.is_empty());
        }
    }

    #[test]
    fn refuses_bad_fields() {
        let cases = [
            (
                r#"{"organizationId":"o","email":"nope"}"#,
                "USER-EMAIL-INVALID",
            ),
            (
                r#"{"organizationId":"","email":"a@b.test"}"#,
                "USER-ORG-INVALID",
            ),
            (
                r#"{"organizationId":"o","email":"a@b.test","displayName":"A\r\nBcc: x@y"}"#,
                "USER-NAME-INVALID",
            ),
            (
                r#"{"organizationId":"o","email":"a@b.test","preferredLanguage":"not a tag"}"#,
                "USER-LANGUAGE-INVALID",
            ),
            (
                r#"{"userId":"other","organizationId":"o","email":"a@b.test"}"#,
                "USER-ID-MISMATCH",
            ),
        ];
        for (json, id) in cases {
            let err = input(json).unwrap().validate(Some("u1")).unwrap_err();
            assert_eq!(err.id, id, "{json}");
        }
        assert!(input(r#"{"organizationId":"o","email":"a@b.test","extra":1}"#).is_err());
        for address in [
            r#""quoted local"@example.test"#,
            "a@[127.0.0.1]",
            "a@b@c",
            "a",
        ] {
            assert!(!valid_email(address), "{address}");
        }
        assert!(valid_email("jörg.o'brien+tag@exämple.test"));
        let long = "x".repeat(201);
        assert!(validate_user_id(&long).is_err());
        assert!(validate_user_id("").is_err());
        for odd in [" ", "\u{3000}", ".", ".."] {
            assert!(validate_user_id(odd).is_err(), "{odd:?}");
        }
        assert!(validate_user_id("...").is_ok());
        assert!(validate_user_id(&"é".repeat(200)).is_ok());
    }
}
