"""Audit: the trail of what the bridge did, activity in the targets, access review and drift reports."""
