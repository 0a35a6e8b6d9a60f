"""Test support shipped with blippsync: a database per test cloned from a migrated
template, and the connector contract suite (`blippsync.testing.contract`)."""
