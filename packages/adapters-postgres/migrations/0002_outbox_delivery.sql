-- The relay purges delivered records after the retention period, and operators list failing ones.
CREATE INDEX outbox_events_delivered ON outbox_events (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX outbox_events_failing ON outbox_events (created_at, event_id) WHERE delivered_at IS NULL AND last_error IS NOT NULL;
