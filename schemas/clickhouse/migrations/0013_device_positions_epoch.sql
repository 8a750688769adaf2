-- The epoch of the stream a device's acknowledged seq belongs to (0: from
-- before epochs, or not known). Reads take the position of the largest
-- epoch, its highest seq.
ALTER TABLE {database}.device_positions ADD COLUMN epoch UInt64 DEFAULT 0
