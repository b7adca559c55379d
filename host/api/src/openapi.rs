//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers.
//!
//! Every `/api/v1` route is registered through [`utoipa_axum::routes!`] from a
//! handler carrying `#[utoipa::path]`, so a route cannot exist without its entry in
//! the document, nor the other way round. Request bodies and query strings are
//! described by the very types the handlers deserialize. Every operation needs a
//! bearer token unless it says otherwise (`POST /auth/login`), and every failure is
//! the one [`ErrorBody`] shape: [`finish`] adds `4XX` and `5XX` answers with
//! that body to every operation, so no handler can forget them.
//!
//! The document is served at `GET /api/v1/openapi.json` (authenticated like the rest
//! of the API) and printed by `switchboard openapi`; CI fuzzes the running server
//! with it (`scripts/api-fuzz.sh`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, ResponseBuilder, content::ContentBuilder};
use utoipa::{OpenApi, ToSchema};

/// Every failure: `{"error": {"code", "message"}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// A stable machine-readable code: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `rate_limited`, `too_large`, …
    code: String,
    /// A sentence for people.
    message: String,
}

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "The REST API of a Switchboard host: contacts, conversations, routing, calls, \
                       agents and plugins. Authenticate with `POST /auth/login` and send the token \
                       as `Authorization: Bearer <token>`.",
        license(name = "Apache-2.0"),
    ),
    servers((url = "/api/v1")),
    components(schemas(ErrorBody, ErrorDetail)),
    security(("bearer" = [])),
    tags(
        (name = "auth", description = "Login, sessions and passwords"),
        (name = "contacts", description = "One contact per customer across channels"),
        (name = "conversations", description = "Conversations, messages and the desk"),
        (name = "routing", description = "Queues, presence, offers and tasks"),
        (name = "calls", description = "Voice calls"),
        (name = "supervision", description = "Agents, the wallboard and reports"),
        (name = "plugins", description = "Installed WebAssembly plugins"),
        (name = "outbox", description = "Outbound deliveries"),
        (name = "crm", description = "CRM records, screen pop and write-back"),
    )
)]
pub struct ApiDoc;

/// Completes the document once the router has added every path: the bearer scheme,
/// and the error answers every operation can give.
pub fn finish(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from POST /auth/login"))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in [
                    ("4XX", "The request was refused; see `error.code`"),
                    ("5XX", "The server failed; see the server log"),
                ] {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::T(error_response(description)));
                }
            }
        }
    }
    openapi
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(crate::openapi_document()).unwrap()
    }

    #[test]
    fn login_is_the_only_operation_without_a_token() {
        let doc = document();
        assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
        let mut open = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op.get("security") == Some(&serde_json::json!([{}])) {
                    open.push(format!("{method} {path}"));
                }
            }
        }
        assert_eq!(open, ["post /auth/login"]);
    }

    #[test]
    fn every_operation_documents_the_error_shape() {
        let doc = document();
        let mut count = 0;
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                for status in ["4XX", "5XX"] {
                    assert_eq!(
                        op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody"
                    );
                }
                count += 1;
            }
        }
        assert!(count >= 50, "{count} operations");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
