//! The Messenger Platform, which carries both Facebook Messenger and Instagram
//! messaging: the same webhook shape (`entry[].messaging[]`), the same Send
//! API (`POST /{page_id}/messages`), the same window rules.
//!
//! - [`inbound`] parses a notification into messages and raw receipts;
//! - [`receipts`] turns Messenger's read watermarks into per-message receipts
//!   with a small per-customer log of what this connector sent;
//! - [`profiles`] looks up and caches a customer's name;
//! - [`outbound`] builds Send API bodies;
//! - [`connector`] ties them to kv and HTTP for the two plugins.

pub mod connector;
pub mod inbound;
pub mod outbound;
pub mod profiles;
pub mod receipts;

/// Which product a connector speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Facebook Messenger (webhook object `page`, page-scoped ids).
    Messenger,
    /// Instagram messaging (webhook object `instagram`, Instagram-scoped ids).
    Instagram,
}

impl Platform {
    /// The webhook `object` this platform's notifications carry.
    pub fn object(self) -> &'static str {
        match self {
            Platform::Messenger => "page",
            Platform::Instagram => "instagram",
        }
    }

    /// The identity kind and channel name: `messenger` or `instagram`.
    pub fn kind(self) -> &'static str {
        match self {
            Platform::Messenger => "messenger",
            Platform::Instagram => "instagram",
        }
    }

    /// The product's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Messenger => "Messenger",
            Platform::Instagram => "Instagram",
        }
    }

    /// The user-profile fields asked for a customer's name.
    pub fn profile_fields(self) -> &'static str {
        match self {
            Platform::Messenger => "first_name,last_name",
            Platform::Instagram => "name,username",
        }
    }
}
