"""stackctl: track a vendor, upgrade by three-way merge, render, apply with rollback."""

__version__ = "0.1.0"
