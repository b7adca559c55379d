//! Inbound media: WhatsApp gives a media id; `GET /{media_id}` answers a
//! short-lived download URL, which needs the same bearer token. The host
//! makes that download itself (size-capped, only to allowed hosts).

use meta_common::Graph;
use serde::Deserialize;
use switchboard_sdk::{DownloadRequest, PluginError};

/// The answer of `GET /{media_id}`.
#[derive(Debug, Deserialize)]
pub struct MediaUrl {
    /// Where the file is, for a few minutes.
    pub url: String,
    /// Its type, as WhatsApp knows it.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Its size in bytes.
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// The path that resolves a media id.
pub fn path(media_id: &str) -> String {
    meta_common::graph::encode(media_id)
}

/// Whether an attachment reference is already a URL rather than a media id.
pub fn is_url(reference: &str) -> bool {
    reference.starts_with("https://") || reference.starts_with("http://")
}

/// The download the host makes for a resolved media URL.
///
/// # Errors
///
/// [`PluginError::Internal`] when WhatsApp answered an empty URL.
pub fn download(graph: &Graph, media: MediaUrl) -> Result<DownloadRequest, PluginError> {
    if media.url.trim().is_empty() {
        return Err(PluginError::Internal(
            "WhatsApp answered a media id without a URL".into(),
        ));
    }
    Ok(DownloadRequest {
        url: media.url,
        headers: vec![graph.authorization()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolved_media_id_is_a_bearer_download() {
        let graph = Graph::new("https://graph.test", "v21.0", "EAAG-token");
        let media: MediaUrl = serde_json::from_str(
            r#"{"messaging_product":"whatsapp","url":"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2","mime_type":"image/jpeg","sha256":"x","file_size":303833,"id":"1003383421387256"}"#,
        )
        .unwrap();
        assert_eq!(media.file_size, Some(303_833));
        assert_eq!(
            download(&graph, media).unwrap(),
            DownloadRequest {
                url: "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2"
                    .into(),
                headers: vec![("Authorization".into(), "Bearer EAAG-token".into())],
            }
        );
        assert!(
            download(
                &graph,
                MediaUrl {
                    url: " ".into(),
                    mime_type: None,
                    file_size: None
                }
            )
            .is_err()
        );
        assert_eq!(path("1003383421387256"), "1003383421387256");
        assert!(is_url("https://lookaside.fbsbx.com/x") && !is_url("1003383421387256"));
    }
}
