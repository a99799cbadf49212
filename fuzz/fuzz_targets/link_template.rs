//! Any text as a link template, rendered with any values: parsing never
//! panics, a parsed template prints back to an equivalent one, and
//! rendering only ever inserts percent-encoded values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passlink_shared::link_template::{LinkTemplate, LinkValues, check_link};

fuzz_target!(|input: (&str, &str, &str)| {
    let (template, user_id, org_id) = input;
    let Ok(parsed) = LinkTemplate::parse(template) else { return };

    let printed = parsed.to_string();
    let reparsed = LinkTemplate::parse_unbounded(&printed).expect("a printed template parses");
    assert_eq!(reparsed, parsed, "printing and parsing again changes nothing");

    let values = LinkValues {
        user_id,
        org_id,
        code_id: "00000000-0000-4000-8000-000000000000",
        code: "SampleCode12",
    };
    let link = parsed.render(&values);
    let literal_only = parsed.render(&LinkValues {
        user_id: "",
        org_id: "",
        code_id: "",
        code: "",
    });
    // Whatever the values hold, they add only unreserved characters and
    // percent escapes: no '?', '#', '&', '/' or space of their own.
    for c in ['?', '#', '&', '/', ' ', '"', '<'] {
        let from_values = link.matches(c).count() - literal_only.matches(c).count();
        assert_eq!(from_values, 0, "a value added {c:?}: {link}");
    }
    let _ = check_link(&link, &[]);
});
