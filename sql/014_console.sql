-- 014: console address conflicts (issue 12, docs/security.md "Console").
--
-- Each running desktop's console address (console_host, console_port: the QEMU VNC websocket
-- its agent reports) must belong to that desktop alone. libvirt allocates the ports per host
-- under its lock; CCC checks the reports anyway: a heartbeat flags every desktop of its server
-- whose address another live desktop also reports (console_conflict, an event
-- 'console.conflict' when the flag is raised, 'console.resolved' when it clears), and the
-- broker and the console check refuse such a desktop (409 console_conflict) while it lasts.
ALTER TABLE desktops
    ADD COLUMN IF NOT EXISTS console_conflict BOOLEAN NOT NULL DEFAULT FALSE,
    ADD KEY IF NOT EXISTS ix_desktops_console (console_host, console_port);
