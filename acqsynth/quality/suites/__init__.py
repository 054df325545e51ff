"""The quality suites, one module per artifact kind, each a function returning the exact list of GX expectations
checked for it. Kept empty here: importing a suite runs this file, and every stage would then depend on it."""
