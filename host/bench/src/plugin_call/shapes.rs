//! Small pieces the native baselines share: header lookup and the empty
//! metadata of a plain message.

use switchboard_plugin_host::bindings::MessageMetadata;

/// A header's value, its name compared ignoring ASCII case (as the SDK does).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The metadata of a plain message.
pub fn no_metadata() -> MessageMetadata {
    MessageMetadata {
        subject: None,
        thread_id: None,
        in_reply_to: None,
        references: Vec::new(),
        interactive_reply: None,
        reaction: None,
        location: None,
        contacts: Vec::new(),
        shared_identities: Vec::new(),
    }
}
