//! Any bytes as a create-link request body: decoding and validation must
//! return a medium or a contract error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passlink_shared::link_request::{Medium, decode};

fuzz_target!(|data: &[u8]| {
    let allowed = ["myapp".to_owned()];
    match decode(data, "user-1", &allowed) {
        Ok(Medium::Send(Some(template))) => {
            // What passed the check must render to a link that passes it too.
            let parsed = passlink_shared::link_template::LinkTemplate::parse(&template)
                .expect("an accepted template parses");
            parsed.check(&allowed).expect("an accepted template renders a safe link");
        }
        Ok(_) => {}
        Err(err) => {
            assert!(err.status() >= 400 && err.status() < 500, "{err}");
            let _ = err.to_json();
        }
    }
});
