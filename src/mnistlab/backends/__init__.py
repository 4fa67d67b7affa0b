"""Where a sweep's runs execute: `local` (this machine) or `ray` (a cluster)."""
