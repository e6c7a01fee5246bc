//! The OpenAPI document, generated from the route annotations and protocol types.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{auth, gateway, notifications, presence, rooms, uploads, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Socket-Hub REST API", description = "Accounts, rooms and history. Live traffic uses the WebSocket at /ws; see docs/protocol.md."),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout,
        users::me, users::update_me, users::profile, users::search, users::change_password, users::delete_me, users::export,
        rooms::routes::create_room, rooms::routes::list_rooms, rooms::routes::list_joined_rooms,
        rooms::routes::get_room,
        rooms::routes::join_room, rooms::routes::leave_room, rooms::routes::list_members,
        rooms::routes::history, rooms::routes::post_message, rooms::routes::mark_read,
        rooms::message_lifecycle::edit_message, rooms::message_lifecycle::delete_message,
        rooms::message_lifecycle::add_reaction, rooms::message_lifecycle::remove_reaction,
        gateway::spaces::broadcast,
        rooms::moderation::update_room, rooms::moderation::delete_room,
        rooms::moderation::kick, rooms::moderation::ban, rooms::moderation::unban,
        rooms::moderation::list_bans, rooms::moderation::mute, rooms::moderation::unmute,
        rooms::moderation::set_role, rooms::moderation::transfer,
        rooms::invites::invite, rooms::invites::list_invitations,
        rooms::invites::accept_invitation, rooms::invites::decline_invitation,
        rooms::invites::create_link, rooms::invites::list_links, rooms::invites::revoke_link,
        rooms::invites::preview_link, rooms::invites::accept_link,
        rooms::direct::open_direct, rooms::direct::list_directs,
        rooms::direct::block, rooms::direct::unblock,
        rooms::reading::receipts, rooms::search::search,
        notifications::list, notifications::unread, notifications::mark_read,
        presence::routes::list,
        uploads::routes::upload, uploads::routes::download,
        uploads::routes::download_thumbnail, uploads::routes::link,
        uploads::routes::delete_upload,
    ),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The document served at `/api/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
