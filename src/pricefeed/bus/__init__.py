"""The seam between ingest and fan-out: what sources publish into and how accepted updates reach the edges."""
