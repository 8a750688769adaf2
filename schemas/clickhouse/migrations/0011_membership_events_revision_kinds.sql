-- membership_events takes its kind from messages (its view selects rows
-- with member_user_ids, which revisions never have): the same enum.
ALTER TABLE {database}.membership_events MODIFY COLUMN kind Enum8('message' = 1, 'created' = 2, 'joined' = 3, 'left' = 4, 'kicked' = 5, 'edit' = 6, 'recall' = 7)
