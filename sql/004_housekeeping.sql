-- 004: indexes for the leader's housekeeping (expired sessions, stale login throttles, old events).
ALTER TABLE sessions ADD KEY IF NOT EXISTS ix_sessions_expires (expires_at);
ALTER TABLE login_throttle ADD KEY IF NOT EXISTS ix_login_throttle_last (last_failure_at);
ALTER TABLE events ADD KEY IF NOT EXISTS ix_events_at (at);
