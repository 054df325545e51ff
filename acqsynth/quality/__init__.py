"""Great Expectations quality gates for the pipeline's artifacts: the gate (`gates`), the suites (`suites`, one
module per artifact kind) and their building blocks (`checks`)."""
