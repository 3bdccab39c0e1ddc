-- The principal that granted each lease (issue 9 finding 9): only it and administrators may see,
-- keep alive or revoke the lease. NULL for leases granted before this migration and for leases
-- a node grants for itself: those are visible to administrators only. Numbered 006 like the
-- SQLite migration of the same change (after the encrypted-value flag migrations).
ALTER TABLE beacon_leases ADD COLUMN owner text;
