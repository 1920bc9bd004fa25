-- 013: hardening (issue 12, docs/security.md).

-- Heartbeat replay protection. An agent numbers its heartbeats (epoch, seq): epoch is the
-- wall-clock millisecond at which the agent process started, seq counts from 1 in that
-- process. CCC keeps the highest pair it accepted (hb_epoch here, hb_seq from 003) and
-- refuses a heartbeat whose pair is not greater: a replayed or reordered old heartbeat never
-- overwrites newer state. Enrollment resets hb_seq only; the epoch of a restarted agent is
-- later anyway.
ALTER TABLE servers
    ADD COLUMN IF NOT EXISTS hb_epoch BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER hb_seq;

-- When a console ticket was minted, for the per-user minting rate ([security] ticket_rate
-- per ticket_rate_window seconds).
ALTER TABLE console_tickets
    ADD COLUMN IF NOT EXISTS created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    ADD KEY IF NOT EXISTS ix_console_tickets_user (user_id, created_at);
