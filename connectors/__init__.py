"""The built-in connector plugins, one package each, registered through the `blippsync`
entry-point group exactly like a third-party package's."""
