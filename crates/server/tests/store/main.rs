//! One behaviour suite for every `Store` backend: each test in [`suite`] runs against
//! SQLite (a temp file) and PostgreSQL (a fresh database of its own on the local server).
#![allow(unreachable_pub)]

mod backends;
mod suite;
#[path = "../support/mod.rs"]
mod support;

/// Instantiates every named suite test once per backend.
macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = crate::backends::Backend::sqlite().await;
                    crate::suite::$test(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = crate::backends::Backend::postgres().await;
                    crate::suite::$test(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

for_each_backend!(
    users_are_unique_case_insensitively,
    refresh_tokens_are_single_use,
    rooms_list_public_and_mine,
    memberships_and_read_markers,
    messages_get_gap_free_seqs_and_idempotency,
    history_pages_and_replay_ranges,
    concurrent_writers_from_several_instances_get_unique_gap_free_seqs,
    a_failed_write_transaction_leaves_nothing_behind,
    the_readiness_probe_writes,
    concurrent_appends_across_rooms_are_gap_free_and_all_stored,
    duplicates_in_one_batch_and_across_batches_return_the_original,
    a_non_member_in_a_batch_fails_alone_and_burns_no_seq,
    a_message_the_database_rejects_fails_alone,
    a_batch_that_cannot_commit_acknowledges_nothing,
    named_rooms_are_found_or_created_once,
    room_events_take_gap_free_seqs_between_messages,
    roles_bans_and_mutes_are_enforced_by_the_store,
    invite_links_admit_exactly_max_uses_and_invitations_are_consumed,
    direct_rooms_are_one_per_pair_and_blocks_make_them_read_only,
    notifications_are_per_user_with_unread_counts,
    profiles_edit_and_search_by_prefix,
    deleted_accounts_stay_as_deleted_user,
    presence_contacts_visibility_and_mentions_read_by_marker,
    contacts_are_everyone_sharing_a_room_once,
    last_seen_times_written_together_are_all_stored,
    a_failed_last_seen_write_is_tried_again_and_stores_nothing,
);

mod postgres_only {
    #[tokio::test]
    async fn a_connection_lost_mid_transaction_is_unavailable_and_the_pool_recovers() {
        let db = crate::backends::Backend::postgres().await;
        crate::suite::a_connection_lost_mid_transaction_is_unavailable_and_the_pool_recovers(&db)
            .await;
        db.cleanup().await;
    }
}
