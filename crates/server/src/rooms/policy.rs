//! Who may do what in a room: one pure function, [`authorize`], over the action, the
//! actor's role (none for a non-member), whether the room is private and the target's
//! role, so every door (REST today, anything later) asks the same question and the whole
//! matrix is unit-tested here. The permission table in `docs/protocol.md` is rendered
//! from this function ([`permission_table`]) and a test keeps the two identical.

use socket_hub_protocol::Role;

use crate::error::Error;

/// Something a user may try to do to a room or one of its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Rename,
    SetTopic,
    /// Set, change or clear a private room's access code.
    ChangeAccessCode,
    /// Make the room public or private.
    SetVisibility,
    /// Invite a user by username.
    Invite,
    /// Create invite links.
    CreateLink,
    /// List and revoke invite links, list bans.
    ManageLinks,
    Kick,
    Ban,
    Unban,
    /// Mute or unmute a member.
    Mute,
    /// Make a member an admin.
    Promote,
    /// Make an admin a member.
    Demote,
    TransferOwnership,
    DeleteRoom,
    Leave,
    /// Edit one's own message (within the edit window).
    EditOwnMessage,
    /// Delete one's own message.
    DeleteOwnMessage,
    /// Delete someone else's message.
    DeleteMessage,
    /// Add or remove one's reaction to a message.
    React,
}

impl Action {
    /// Every action, in the order of the documented table.
    pub const ALL: [Action; 20] = [
        Action::Rename,
        Action::SetTopic,
        Action::ChangeAccessCode,
        Action::SetVisibility,
        Action::Invite,
        Action::CreateLink,
        Action::ManageLinks,
        Action::Kick,
        Action::Ban,
        Action::Unban,
        Action::Mute,
        Action::Promote,
        Action::Demote,
        Action::TransferOwnership,
        Action::DeleteRoom,
        Action::Leave,
        Action::EditOwnMessage,
        Action::DeleteOwnMessage,
        Action::DeleteMessage,
        Action::React,
    ];

    /// How the documentation names the action and its REST call.
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Self::Rename => ("rename", "`PATCH /rooms/{id}` `name`"),
            Self::SetTopic => ("set topic", "`PATCH /rooms/{id}` `topic`"),
            Self::ChangeAccessCode => (
                "change/clear access code",
                "`PATCH /rooms/{id}` `access_code`",
            ),
            Self::SetVisibility => ("make public/private", "`PATCH /rooms/{id}` `is_private`"),
            Self::Invite => ("invite a user", "`POST /rooms/{id}/invitations`"),
            Self::CreateLink => ("create invite links", "`POST /rooms/{id}/invites`"),
            Self::ManageLinks => (
                "list/revoke links, list bans",
                "`GET /rooms/{id}/invites`, `DELETE /rooms/{id}/invites/{invite_id}`, `GET /rooms/{id}/bans`",
            ),
            Self::Kick => ("kick", "`POST /rooms/{id}/members/{user_id}/kick`"),
            Self::Ban => ("ban", "`POST /rooms/{id}/bans`"),
            Self::Unban => ("unban", "`DELETE /rooms/{id}/bans/{user_id}`"),
            Self::Mute => (
                "mute/unmute",
                "`POST`/`DELETE /rooms/{id}/members/{user_id}/mute`",
            ),
            Self::Promote => (
                "promote to admin",
                "`PUT /rooms/{id}/members/{user_id}/role` `admin`",
            ),
            Self::Demote => (
                "demote to member",
                "`PUT /rooms/{id}/members/{user_id}/role` `member`",
            ),
            Self::TransferOwnership => ("transfer ownership", "`POST /rooms/{id}/transfer`"),
            Self::DeleteRoom => ("delete the room", "`DELETE /rooms/{id}`"),
            Self::Leave => ("leave", "`POST /rooms/{id}/leave`"),
            Self::EditOwnMessage => (
                "edit your message",
                "`PATCH /rooms/{id}/messages/{message_id}`",
            ),
            Self::DeleteOwnMessage => (
                "delete your message",
                "`DELETE /rooms/{id}/messages/{message_id}`",
            ),
            Self::DeleteMessage => (
                "delete another's message",
                "`DELETE /rooms/{id}/messages/{message_id}`",
            ),
            Self::React => (
                "react to a message",
                "`PUT`/`DELETE /rooms/{id}/messages/{message_id}/reactions/{emoji}`",
            ),
        }
    }

    /// Who the action may be done to, for the documentation.
    fn target_rule(self) -> &'static str {
        match self {
            Self::Kick | Self::Mute => "a member of a lower role",
            Self::Ban => "a non-member, or a member of a lower role",
            Self::Unban => "a banned user",
            Self::Promote => "a `member`",
            Self::Demote => "an `admin`",
            Self::TransferOwnership => "another member (the owner becomes `admin`)",
            Self::EditOwnMessage => "within `--edit-window-secs` of sending",
            Self::DeleteMessage => {
                "a message whose author is a member of a lower role, or no longer a member"
            }
            _ => "",
        }
    }
}

/// Why [`authorize`] said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A non-member and a private room: answered as "no such room", so private rooms do
    /// not leak their existence.
    Hidden,
    /// A non-member of a public room.
    NotMember,
    /// The actor's role is too low.
    Role,
    /// The target is not a member (and must be).
    NoTarget,
    /// The target's role rules it out (equal or higher rank, or the wrong role).
    Target,
    /// The owner may not leave: the room would have no owner.
    OwnerLeaving,
}

impl From<Denied> for Error {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Hidden => Error::NotFound("room"),
            Denied::NotMember => Error::Forbidden("join the room first"),
            Denied::Role => Error::Forbidden("your role in this room does not allow this"),
            Denied::NoTarget => Error::NotFound("member"),
            Denied::Target => Error::Forbidden("not allowed on a member of that role"),
            Denied::OwnerLeaving => {
                Error::Forbidden("the owner must transfer ownership before leaving")
            }
        }
    }
}

/// Whether `actor` (their role, `None` when not a member) may do `action` in a room
/// (`private` or not) to a `target` (their role, `None` when not a member; ignored by
/// actions that have no target).
pub fn authorize(
    action: Action,
    actor: Option<Role>,
    private: bool,
    target: Option<Role>,
) -> Result<(), Denied> {
    let Some(actor) = actor else {
        return Err(if private {
            Denied::Hidden
        } else {
            Denied::NotMember
        });
    };
    let at_least = |needed: Role| {
        if actor >= needed {
            Ok(())
        } else {
            Err(Denied::Role)
        }
    };
    // Moderation reaches only strictly lower roles: admins act on members, the owner on
    // admins and members.
    let below = |target: Option<Role>| match target {
        Some(role) if role < actor => Ok(()),
        Some(_) => Err(Denied::Target),
        None => Err(Denied::NoTarget),
    };
    match action {
        Action::Rename
        | Action::SetTopic
        | Action::ChangeAccessCode
        | Action::SetVisibility
        | Action::CreateLink
        | Action::ManageLinks
        | Action::Unban => at_least(Role::Admin),
        Action::Invite if private => at_least(Role::Admin),
        Action::Invite => Ok(()),
        Action::Kick | Action::Mute => {
            at_least(Role::Admin)?;
            below(target)
        }
        Action::Ban | Action::DeleteMessage => {
            at_least(Role::Admin)?;
            match target {
                None => Ok(()),
                some => below(some),
            }
        }
        Action::Promote | Action::Demote => {
            at_least(Role::Owner)?;
            let wanted = if action == Action::Promote {
                Role::Member
            } else {
                Role::Admin
            };
            match target {
                Some(role) if role == wanted => Ok(()),
                Some(_) => Err(Denied::Target),
                None => Err(Denied::NoTarget),
            }
        }
        Action::TransferOwnership => {
            at_least(Role::Owner)?;
            below(target)
        }
        Action::DeleteRoom => at_least(Role::Owner),
        Action::Leave if actor == Role::Owner => Err(Denied::OwnerLeaving),
        Action::Leave => Ok(()),
        Action::EditOwnMessage | Action::DeleteOwnMessage | Action::React => Ok(()),
    }
}

/// The permission table of `docs/protocol.md`, rendered from [`authorize`].
pub fn permission_table() -> String {
    let mut out = String::from(
        "| action | REST call | member | admin | owner | may be done to |\n|---|---|---|---|---|---|\n",
    );
    for action in Action::ALL {
        let (name, call) = action.describe();
        let cell = |role: Role| {
            // Allowed for some target of the right role, in a public and a private room.
            let allowed = |private: bool| {
                [
                    None,
                    Some(Role::Member),
                    Some(Role::Admin),
                    Some(Role::Owner),
                ]
                .into_iter()
                .any(|target| authorize(action, Some(role), private, target).is_ok())
            };
            match (allowed(false), allowed(true)) {
                (true, true) => "yes",
                (true, false) => "public rooms",
                (false, true) => "private rooms",
                (false, false) => "no",
            }
        };
        out.push_str(&format!(
            "| {name} | {call} | {} | {} | {} | {} |\n",
            cell(Role::Member),
            cell(Role::Admin),
            cell(Role::Owner),
            action.target_rule()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Option<Role>; 4] = [
        None,
        Some(Role::Member),
        Some(Role::Admin),
        Some(Role::Owner),
    ];

    /// The whole matrix: action × actor role × public/private × target role.
    #[test]
    fn the_matrix() {
        use Action::*;
        for action in Action::ALL {
            for private in [false, true] {
                for actor in ROLES {
                    for target in ROLES {
                        let got = authorize(action, actor, private, target);
                        let want = expected(action, actor, private, target);
                        assert_eq!(
                            got, want,
                            "{action:?} by {actor:?} on {target:?}, private: {private}"
                        );
                    }
                }
            }
        }
        // A few rows spelled out, as the issue words them.
        assert_eq!(
            authorize(Kick, Some(Role::Member), false, Some(Role::Member)),
            Err(Denied::Role),
            "a non-admin cannot kick"
        );
        assert_eq!(
            authorize(Kick, Some(Role::Admin), true, Some(Role::Member)),
            Ok(())
        );
        assert_eq!(
            authorize(Kick, Some(Role::Admin), true, Some(Role::Admin)),
            Err(Denied::Target),
            "admins cannot kick each other"
        );
        assert_eq!(
            authorize(Leave, Some(Role::Owner), false, None),
            Err(Denied::OwnerLeaving)
        );
        assert_eq!(authorize(Invite, Some(Role::Member), false, None), Ok(()));
        assert_eq!(
            authorize(Invite, Some(Role::Member), true, None),
            Err(Denied::Role)
        );
        assert_eq!(authorize(Rename, None, true, None), Err(Denied::Hidden));
        assert_eq!(authorize(Rename, None, false, None), Err(Denied::NotMember));
        assert_eq!(
            authorize(DeleteMessage, Some(Role::Member), false, Some(Role::Member)),
            Err(Denied::Role),
            "a member cannot delete another's message"
        );
        assert_eq!(
            authorize(DeleteMessage, Some(Role::Admin), false, None),
            Ok(()),
            "an admin may delete the message of someone who left"
        );
        assert_eq!(
            authorize(DeleteMessage, Some(Role::Admin), false, Some(Role::Owner)),
            Err(Denied::Target)
        );
        assert_eq!(authorize(React, None, false, None), Err(Denied::NotMember));
        assert_eq!(
            authorize(EditOwnMessage, Some(Role::Member), true, None),
            Ok(())
        );
    }

    /// The matrix written out independently of `authorize`'s structure.
    fn expected(
        action: Action,
        actor: Option<Role>,
        private: bool,
        target: Option<Role>,
    ) -> Result<(), Denied> {
        use Action::*;
        use Role::*;
        let Some(actor) = actor else {
            return Err(if private {
                Denied::Hidden
            } else {
                Denied::NotMember
            });
        };
        let rank = |role: Role| match role {
            Member => 0,
            Admin => 1,
            Owner => 2,
        };
        let needed = match action {
            Leave | EditOwnMessage | DeleteOwnMessage | React => Member,
            Invite if !private => Member,
            Promote | Demote | TransferOwnership | DeleteRoom => Owner,
            _ => Admin,
        };
        if rank(actor) < rank(needed) {
            return Err(Denied::Role);
        }
        match (action, target) {
            (Leave, _) if actor == Owner => Err(Denied::OwnerLeaving),
            (Kick | Mute | TransferOwnership | Promote | Demote, None) => Err(Denied::NoTarget),
            (Kick | Mute | Ban | DeleteMessage | TransferOwnership, Some(t))
                if rank(t) >= rank(actor) =>
            {
                Err(Denied::Target)
            }
            (Promote, Some(t)) if t != Member => Err(Denied::Target),
            (Demote, Some(t)) if t != Admin => Err(Denied::Target),
            _ => Ok(()),
        }
    }

    #[test]
    fn non_members_may_do_nothing_and_private_rooms_stay_hidden() {
        for action in Action::ALL {
            for target in ROLES {
                assert_eq!(authorize(action, None, true, target), Err(Denied::Hidden));
                assert_eq!(
                    authorize(action, None, false, target),
                    Err(Denied::NotMember)
                );
            }
        }
    }

    #[test]
    fn the_documented_table_is_the_function() {
        let docs = include_str!("../../../../docs/protocol.md");
        let table = permission_table();
        assert!(
            docs.contains(&table),
            "docs/protocol.md must contain this permission table:\n{table}"
        );
    }
}
