-- The principal that granted each lease (issue 9 finding 9): only it and administrators may see,
-- keep alive or revoke the lease. NULL for leases granted before this migration and for leases
-- the node grants for itself: those are visible to administrators only.
ALTER TABLE leases ADD COLUMN owner TEXT;
